//! Command-line values the load tools share.

/// The value of `flag` as a count: a positive integer.
pub fn positive(flag: &str, value: &str) -> Result<usize, String> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{flag} must be a positive integer, not {value:?}"))
}
