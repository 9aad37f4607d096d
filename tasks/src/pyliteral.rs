//! `ast.literal_eval` for the literals a rendered template can spell: lists and tuples of
//! strings, numbers, booleans and `None` (lm-eval parses `doc_to_choice` and list-looking
//! `doc_to_target` renderings this way; api/task.py `doc_to_choice`, `doc_to_target`).

use serde_json::Value;

/// The value of a Python literal, or `None` where `ast.literal_eval` would raise.
pub(crate) fn literal_eval(text: &str) -> Option<Value> {
    let mut p = LiteralParser {
        chars: text.chars().collect(),
        at: 0,
    };
    let value = p.value()?;
    p.space();
    (p.at == p.chars.len()).then_some(value)
}

struct LiteralParser {
    chars: Vec<char>,
    at: usize,
}

impl LiteralParser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn space(&mut self) {
        while self
            .peek()
            .is_some_and(|c| c == ' ' || c == '\t' || c == '\n' || c == '\r')
        {
            self.at += 1;
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.space();
        match self.peek()? {
            '[' => self.sequence(']'),
            '(' => self.sequence(')'),
            '\'' | '"' => self.strings(),
            c if c == '-' || c == '+' || c.is_ascii_digit() || c == '.' => self.number(),
            _ => self.word(),
        }
    }

    fn sequence(&mut self, close: char) -> Option<Value> {
        self.at += 1;
        let mut items = Vec::new();
        loop {
            self.space();
            if self.peek()? == close {
                self.at += 1;
                return Some(Value::Array(items));
            }
            items.push(self.value()?);
            self.space();
            match self.peek()? {
                ',' => self.at += 1,
                c if c == close => {}
                _ => return None,
            }
        }
    }

    /// Adjacent string literals concatenate, as in Python.
    fn strings(&mut self) -> Option<Value> {
        let mut out = String::new();
        while let Some(q @ ('\'' | '"')) = self.peek() {
            self.at += 1;
            loop {
                let c = self.peek()?;
                self.at += 1;
                match c {
                    _ if c == q => break,
                    '\n' => return None,
                    '\\' => out.push_str(&self.escape()?),
                    _ => out.push(c),
                }
            }
            self.space();
        }
        Some(Value::String(out))
    }

    fn escape(&mut self) -> Option<String> {
        let c = self.peek()?;
        self.at += 1;
        let hex = |p: &mut Self, n: usize| -> Option<String> {
            let digits: String = p.chars.get(p.at..p.at + n)?.iter().collect();
            p.at += n;
            char::from_u32(u32::from_str_radix(&digits, 16).ok()?).map(String::from)
        };
        Some(match c {
            '\n' => String::new(),
            '\\' | '\'' | '"' => c.to_string(),
            'n' => "\n".into(),
            't' => "\t".into(),
            'r' => "\r".into(),
            'a' => "\x07".into(),
            'b' => "\x08".into(),
            'f' => "\x0c".into(),
            'v' => "\x0b".into(),
            'x' => hex(self, 2)?,
            'u' => hex(self, 4)?,
            'U' => hex(self, 8)?,
            '0'..='7' => {
                let mut n = c.to_digit(8)?;
                for _ in 0..2 {
                    match self.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            n = n * 8 + d;
                            self.at += 1;
                        }
                        None => break,
                    }
                }
                char::from_u32(n)?.to_string()
            }
            // Python keeps unknown escapes as written.
            _ => format!("\\{c}"),
        })
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'))
        {
            self.at += 1;
        }
        let text: String = self.chars[start..self.at].iter().filter(|&&c| c != '_').collect();
        if let Ok(i) = text.parse::<i64>() {
            return Some(Value::from(i));
        }
        let f: f64 = text.parse().ok()?;
        serde_json::Number::from_f64(f).map(Value::Number)
    }

    fn word(&mut self) -> Option<Value> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.at += 1;
        }
        match self.chars[start..self.at].iter().collect::<String>().as_str() {
            "True" => Some(Value::Bool(true)),
            "False" => Some(Value::Bool(false)),
            "None" => Some(Value::Null),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::literal_eval;
    use serde_json::json;

    #[test]
    fn evaluates_python_literals() {
        assert_eq!(
            literal_eval("['a', \"it's\", 'x\\ny']"),
            Some(json!(["a", "it's", "x\ny"]))
        );
        assert_eq!(
            literal_eval("('a', 3, -1.5, True, None)"),
            Some(json!(["a", 3, -1.5, true, null]))
        );
        assert_eq!(literal_eval("[[1, 2], []]"), Some(json!([[1, 2], []])));
        assert_eq!(literal_eval("'\\xe9\\u200b'"), Some(json!("é\u{200b}")));
        assert_eq!(literal_eval("'a' 'b'"), Some(json!("ab")));
        assert_eq!(literal_eval("12"), Some(json!(12)));
        assert_eq!(literal_eval("[a, b]"), None);
        assert_eq!(literal_eval("[1, 2"), None);
        assert_eq!(literal_eval("[1] x"), None);
    }
}
