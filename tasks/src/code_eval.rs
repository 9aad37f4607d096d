//! How a code task's check program is run: as HF evaluate's `code_eval` runs it (lm-eval's
//! humaneval and mbpp call it), not as a script. `code_eval.py` beside this file reproduces its
//! `unsafe_execute`; the sandbox runs the script this module builds, and [`passed`] reads the
//! verdict.

/// Printed by the script only when the program ran to its end without an exception.
const MARKER: &str = "\n[code_eval: passed]\n";

/// The Python script that runs `check_program` as code_eval does: the program as a string
/// literal (JSON's string syntax is Python's), then `code_eval.py`.
pub fn script(check_program: &str) -> String {
    let literal = |text: &str| serde_json::to_string(text).expect("a string serializes");
    format!(
        "PROGRAM = {}\nMARKER = {}\n{}",
        literal(check_program),
        literal(MARKER),
        include_str!("code_eval.py")
    )
}

/// Whether a run of [`script`] passed: it exited with code 0 within every limit and printed
/// the marker last (code_eval's "passed").
pub fn passed(exited_zero: bool, stdout: &str) -> bool {
    exited_zero && stdout.ends_with(MARKER)
}
