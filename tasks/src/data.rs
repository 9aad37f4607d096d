//! Reading the bundled (gzip-compressed) data files, keeping line numbers for error messages.

use std::io::Read;
use std::path::Path;

use crate::error::TaskError;

/// The decompressed text of a `.gz` file (or of a plain file, if the name does not end in `.gz`).
pub(crate) fn read_text(path: &Path) -> Result<String, TaskError> {
    let io = |source| TaskError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(io)?;
        out
    } else {
        raw
    };
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        TaskError::malformed(path, line, format!("invalid UTF-8: {}", e.utf8_error()))
    })
}

/// Lines of a text file as (1-based line number, text), without the terminating `\n`
/// (a `\r` before it is dropped too). A final newline does not make an extra empty line.
pub(crate) fn lines(path: &Path) -> Result<Vec<(usize, String)>, TaskError> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    let body = text.strip_suffix('\n').unwrap_or(&text);
    if text.is_empty() {
        return Ok(out);
    }
    for (i, line) in body.split('\n').enumerate() {
        out.push((i + 1, line.strip_suffix('\r').unwrap_or(line).to_string()));
    }
    Ok(out)
}

/// A label file (`.lst`): one integer per line.
pub(crate) fn int_lines(path: &Path) -> Result<Vec<(usize, i64)>, TaskError> {
    lines(path)?
        .into_iter()
        .map(|(n, line)| {
            line.trim()
                .parse::<i64>()
                .map(|v| (n, v))
                .map_err(|_| TaskError::malformed(path, n, format!("bad label {line:?}")))
        })
        .collect()
}

/// Records of a headerless CSV file (RFC 4180 quoting; quoted fields may span lines) with the
/// line each record starts on.
pub(crate) fn csv_records(path: &Path) -> Result<Vec<(usize, Vec<String>)>, TaskError> {
    let text = read_text(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() as usize;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(line, |p| p.line() as usize);
                out.push((line, record.iter().map(str::to_string).collect()));
            }
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line() as usize);
                return Err(TaskError::malformed(path, line, format!("bad CSV: {e}")));
            }
        }
    }
    Ok(out)
}
