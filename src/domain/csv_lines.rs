//! Helpers shared by the CSV imports staff upload (bank statements, the commune registry):
//! error messages must name the line Excel shows, and must never echo a whole field back.

/// Field values quoted in error messages are cut to this many characters.
const QUOTED_VALUE_MAX_CHARS: usize = 40;

/// The 1-based line holding byte `offset` of `bytes`.
pub(crate) fn line_at(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The text line each record starts on. The reader's own line count is off by one after a
/// CRLF or a blank line (a record's start offset can sit before the line break that precedes
/// it), so lines are counted here from the record's byte offset, skipping line breaks.
pub(crate) struct LineCounter<'a> {
    text: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            offset: 0,
            line: 1,
        }
    }

    /// Records must be passed in file order.
    pub(crate) fn record(&mut self, record: &csv::StringRecord) -> usize {
        let mut start = record
            .position()
            .map_or(self.offset, |p| {
                usize::try_from(p.byte()).unwrap_or(usize::MAX)
            })
            .clamp(self.offset, self.text.len());
        while matches!(self.text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        // A line ends at "\n", "\r\n", or a lone "\r" (old Mac exports).
        let skipped = &self.text[self.offset..start];
        self.line += skipped
            .iter()
            .enumerate()
            .filter(|&(i, &b)| {
                b == b'\n' || (b == b'\r' && self.text.get(self.offset + i + 1) != Some(&b'\n'))
            })
            .count();
        self.offset = start;
        self.line
    }
}

/// `"text"` with Rust escaping, cut so an error message never carries a whole field.
pub(crate) fn quoted(text: &str) -> String {
    if text.chars().count() > QUOTED_VALUE_MAX_CHARS {
        let cut: String = text.chars().take(QUOTED_VALUE_MAX_CHARS).collect();
        format!("{:?}…", cut)
    } else {
        format!("{text:?}")
    }
}
