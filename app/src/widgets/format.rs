//! Numbers as people read them in the UI (thousands separators), shared by the widgets and the
//! screens.

/// Thousands separators: 6000 → "6,000".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count with its noun, singular for one: (1, "warning") → "1 warning", (3, …) → "3 warnings".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", thousands(n as u64))
    }
}

/// Text meant for the command line, in plain words for the window: every parenthesis that names
/// a command-line flag (" (--target COL)", " (`--target COL`)") is left out.
pub fn plain_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('(') {
        let Some(len) = rest[open..].find(')') else {
            break;
        };
        let inner = &rest[open + 1..open + len];
        let (before, after) = (&rest[..open], &rest[open + len + 1..]);
        if inner.contains("--") {
            out.push_str(before.trim_end_matches(' '));
        } else {
            out.push_str(&rest[..=open + len]);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_flags_are_left_out() {
        assert_eq!(
            plain_words("one numeric column is the value to predict (--target COL)"),
            "one numeric column is the value to predict"
        );
        assert_eq!(
            plain_words("The column to predict (`--target COL`); empty picks a column (target)."),
            "The column to predict; empty picks a column (target)."
        );
        assert_eq!(plain_words("no (paren"), "no (paren");
        assert_eq!(plain_words("a (b) c"), "a (b) c");
    }
}
