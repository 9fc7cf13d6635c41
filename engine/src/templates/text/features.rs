//! The maxent text classifier's features: Unicode word segmentation (UAX #29, lower-cased), word
//! 1…N-grams and character n-grams inside word boundaries, a vocabulary of the most frequent terms
//! seen in at least `min_count` documents, and sublinear TF × smoothed IDF rows normalized to unit
//! length (scikit-learn's `TfidfVectorizer(sublinear_tf=True)` conventions).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use unicode_segmentation::UnicodeSegmentation;

/// Characters of a document used for features (longer texts are cut; a mail's first 20k
/// characters say what it is).
pub const MAX_CHARS: usize = 20_000;

/// The tokenizer rules and vocabulary limits (written to `config.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenizerRules {
    /// Word n-grams from 1 to this (1 = single words).
    pub word_ngrams: usize,
    /// Character n-grams of words padded with a space on each side, `char_ngram_min..=max`
    /// (`max` 0 = none).
    pub char_ngram_min: usize,
    pub char_ngram_max: usize,
    pub max_features: usize,
    pub min_count: usize,
}

/// A fitted vectorizer: rules, vocabulary (term → column) and IDF per column.
#[derive(Clone, Debug)]
pub struct Vectorizer {
    pub rules: TokenizerRules,
    pub vocab: Vec<String>,
    pub idf: Vec<f32>,
    index: HashMap<String, u32>,
}

/// A sparse row: (column, value) sorted by column.
pub type SparseRow = Vec<(u32, f32)>;

/// Lower-cased words of `text` (Unicode word boundaries; punctuation and spaces dropped).
pub fn words(text: &str) -> Vec<String> {
    let cut = match text.char_indices().nth(MAX_CHARS) {
        Some((i, _)) => &text[..i],
        None => text,
    };
    cut.unicode_words().map(str::to_lowercase).collect()
}

/// Every term of `text` with its count. Word n-grams are `w:…` (words joined by a space),
/// character n-grams `c:…` (a word padded with spaces, so prefixes and suffixes are marked).
pub fn terms(text: &str, rules: &TokenizerRules) -> HashMap<String, u32> {
    let words = words(text);
    let mut out: HashMap<String, u32> = HashMap::new();
    for n in 1..=rules.word_ngrams.max(1) {
        for gram in words.windows(n) {
            *out.entry(format!("w:{}", gram.join(" "))).or_default() += 1;
        }
    }
    if rules.char_ngram_max > 0 {
        let lo = rules.char_ngram_min.max(1);
        for w in &words {
            let padded: Vec<char> = std::iter::once(' ')
                .chain(w.chars())
                .chain(std::iter::once(' '))
                .collect();
            for n in lo..=rules.char_ngram_max {
                for gram in padded.windows(n) {
                    let mut s = String::with_capacity(2 + 4 * n);
                    s.push_str("c:");
                    s.extend(gram);
                    *out.entry(s).or_default() += 1;
                }
            }
        }
    }
    out
}

impl Vectorizer {
    /// Learns the vocabulary and IDF from training texts.
    pub fn fit(texts: &[&str], rules: TokenizerRules) -> Self {
        let df: HashMap<String, u32> = texts
            .par_iter()
            .fold(HashMap::new, |mut acc: HashMap<String, u32>, t| {
                for term in terms(t, &rules).into_keys() {
                    *acc.entry(term).or_default() += 1;
                }
                acc
            })
            .reduce(HashMap::new, |a, b| {
                let (mut big, small) = if a.len() >= b.len() { (a, b) } else { (b, a) };
                for (k, v) in small {
                    *big.entry(k).or_default() += v;
                }
                big
            });
        let mut kept: Vec<(String, u32)> = df
            .into_iter()
            .filter(|(_, c)| *c as usize >= rules.min_count.max(1))
            .collect();
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        kept.truncate(rules.max_features.max(1));
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        let n = texts.len() as f32;
        let idf = kept
            .iter()
            .map(|(_, c)| ((1.0 + n) / (1.0 + *c as f32)).ln() + 1.0)
            .collect();
        let vocab: Vec<String> = kept.into_iter().map(|(t, _)| t).collect();
        Self::from_parts(rules, vocab, idf)
    }

    /// Rebuilds a vectorizer from exported parts.
    pub fn from_parts(rules: TokenizerRules, vocab: Vec<String>, idf: Vec<f32>) -> Self {
        let index = vocab
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        Self {
            rules,
            vocab,
            idf,
            index,
        }
    }

    pub fn dim(&self) -> usize {
        self.vocab.len()
    }

    /// The TF-IDF row of one text, L2-normalized (empty when no term is in the vocabulary).
    pub fn transform(&self, text: &str) -> SparseRow {
        let mut row: SparseRow = terms(text, &self.rules)
            .into_iter()
            .filter_map(|(t, c)| {
                let j = *self.index.get(&t)?;
                let idf = self.idf.get(j as usize).copied().unwrap_or(1.0);
                Some((j, (1.0 + (c as f32).ln()) * idf))
            })
            .collect();
        row.sort_unstable_by_key(|e| e.0);
        let norm = row.iter().map(|e| e.1 * e.1).sum::<f32>().sqrt();
        if norm > 0.0 {
            for e in &mut row {
                e.1 /= norm;
            }
        }
        row
    }

    /// Rows of many texts, in parallel.
    pub fn transform_many(&self, texts: &[&str]) -> Vec<SparseRow> {
        texts.par_iter().map(|t| self.transform(t)).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn rules() -> TokenizerRules {
        TokenizerRules {
            word_ngrams: 2,
            char_ngram_min: 2,
            char_ngram_max: 3,
            max_features: 1000,
            min_count: 1,
        }
    }

    #[test]
    fn segments_unicode_words_and_lowercases() {
        assert_eq!(
            words("Hello, WORLD! Grüße aus Köln — it's 3.5 km."),
            vec![
                "hello", "world", "grüße", "aus", "köln", "it's", "3.5", "km"
            ]
        );
        // Scripts without spaces still split into words (UAX #29 treats each ideograph as one).
        assert_eq!(words("東京").len(), 2);
        let t = terms("to be or not to be", &rules());
        assert_eq!(t["w:to be"], 2);
        assert_eq!(t["w:be"], 2);
        assert_eq!(t["c: t"], 2);
        assert_eq!(t["c:be "], 2);
        assert!(!t.contains_key("w:be to be"));
    }

    #[test]
    fn tf_idf_matches_the_textbook_formula() {
        let docs = ["apple banana", "apple cherry", "apple apple durian"];
        let v = Vectorizer::fit(
            &docs,
            TokenizerRules {
                word_ngrams: 1,
                char_ngram_min: 0,
                char_ngram_max: 0,
                max_features: 10,
                min_count: 1,
            },
        );
        assert_eq!(v.vocab, vec!["w:apple", "w:banana", "w:cherry", "w:durian"]);
        // idf = ln((1+n)/(1+df)) + 1
        assert!((v.idf[0] - 1.0).abs() < 1e-6);
        assert!((v.idf[1] - ((4.0f32 / 2.0).ln() + 1.0)).abs() < 1e-6);
        let row = v.transform("apple apple durian unknown");
        let a = (1.0 + 2f32.ln()) * v.idf[0];
        let d = v.idf[3];
        let n = (a * a + d * d).sqrt();
        assert_eq!(row.len(), 2);
        assert!((row[0].1 - a / n).abs() < 1e-6 && (row[1].1 - d / n).abs() < 1e-6);
        assert!(v.transform("nothing known").is_empty());
    }

    #[test]
    fn vocabulary_respects_min_count_and_size() {
        let docs = ["a b c", "a b", "a"];
        let mut r = rules();
        r.char_ngram_max = 0;
        r.word_ngrams = 1;
        r.min_count = 2;
        let v = Vectorizer::fit(&docs, r.clone());
        assert_eq!(v.vocab, vec!["w:a", "w:b"]);
        r.min_count = 1;
        r.max_features = 1;
        assert_eq!(Vectorizer::fit(&docs, r).vocab, vec!["w:a"]);
    }
}
