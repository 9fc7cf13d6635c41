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
