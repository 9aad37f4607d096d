//! minerva_math's `is_equiv` without sympy.
//!
//! lm-eval (minerva_math/utils.py `is_equiv`) parses both normalized answers with sympy's
//! `parse_latex` (ANTLR grammar `LaTeX.g4`) and counts them equal when
//! `sympy.simplify(a - b) == 0`; any parse error, a relation, ∞ (`oo - oo = nan`) or a timeout
//! gives "not equal". This module keeps that shape:
//!
//! 1. parse each string with a recursive-descent parser for the common part of sympy's grammar:
//!    numbers (`DIGIT+ (',' DIGIT{3})* ('.' DIGIT+)?`), letters and `\commands` as symbols
//!    (so `\text{Monday}` is the product text·M·o·n·d·a·y, as in sympy), `+ - * / :`,
//!    `\cdot \times \div`, implicit multiplication (binding tighter than `*` and `/`, so `1/2x` is
//!    1/(2x)), `^`, `!`, `_` subscripts, groups `() [] {} \{\}`, `|x|`, `\frac \dfrac \tfrac`,
//!    `\sqrt{x}`, `\sqrt[n]{x}`, `\binom`, `\lfloor\rfloor`, `\lceil\rceil`, `\overline`,
//!    `\sin`…`\ln`, `\log_b`; `\left`, `\right` and the spacing commands are skipped;
//! 2. reject what sympy rejects in the MATH answers: characters outside its token set (`\%`,
//!    `\\`, `&`, non-ASCII, …, so matrices and percentages never match), leading-dot decimals
//!    (`.5`), integers with a leading zero (`01`: `sympy.Number` refuses them), empty groups,
//!    `\sqrt` without braces, unbalanced groups and commas inside groups (tuples and intervals
//!    such as `(1,2)`, `[2,5)`); like sympy, tokens after a complete top-level expression are
//!    ignored (`1,2` parses as 1);
//! 3. a relation (`<`, `\le`, …), `\infty` or a non-finite value is "not equal";
//! 4. instead of `simplify(a - b) == 0`: without symbols, two rational constants (integers,
//!    `+ - * /`, integer powers, `!`, `\binom`) are compared exactly as sympy's Integer and
//!    Rational arithmetic does, in f64 once a decimal (sympy `Float`) takes part; other constants
//!    (roots, functions) agree to 1e-9 (relative); with symbols (`\pi` is one here), the values
//!    agree at fixed pseudo-random complex assignments of the symbols (polynomial identity
//!    testing: `x^2+1` equals `1+x^2`; complex, as sympy's symbols are, so `\sqrt{x^2}` is not
//!    `x`).
//!
//! Differences from sympy remain for inputs outside this grammar, for floating-point ties
//! (sympy's `Float` arithmetic), and for the parser's error recovery; tests/lm_eval_gen_reference.rs
//! measures the agreement with lm-eval's own `is_equiv` on all 5,000 MATH gold answers and on
//! hand-picked pairs.

use std::collections::BTreeSet;

use crate::complex::{self, Complex};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(String),
    Letter(char),
    Cmd(String),
    Punct(char),
    LBraceLit,
    RBraceLit,
}

/// Commands the lexer drops (spacing, `\left`/`\right`, which only size delimiters).
const SKIPPED: [&str; 11] = [
    "left",
    "right",
    "quad",
    "qquad",
    "thinspace",
    "medspace",
    "thickspace",
    "negthinspace",
    "negmedspace",
    "negthickspace",
    "displaystyle",
];

fn lex(s: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == '\\' {
            let next = *chars.get(i + 1)?;
            if next.is_ascii_alphabetic() {
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_ascii_alphabetic() {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                if !SKIPPED.contains(&name.as_str()) {
                    out.push(Tok::Cmd(name));
                }
                i = j;
            } else {
                match next {
                    // spacing, and sympy's IGNORE tokens (\- \* \. \/ \" \( \) \=)
                    ',' | ':' | ';' | '!' | ' ' | '>' | '-' | '*' | '.' | '/' | '"' | '(' | ')' | '=' => {}
                    '{' => out.push(Tok::LBraceLit),
                    '}' => out.push(Tok::RBraceLit),
                    '|' => out.push(Tok::Punct('|')),
                    _ => return None,
                }
                i += 2;
            }
        } else if c.is_ascii_digit()
            && matches!(out.last(), Some(Tok::Cmd(f)) if ["frac", "dfrac", "tfrac"].contains(&f.as_str()))
        {
            // `\frac12…`: sympy's grammar takes single DIGIT arguments here.
            out.push(Tok::Num(c.to_string()));
            if chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                out.push(Tok::Num(chars[i + 1].to_string()));
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_digit() {
            let mut j = i;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            // (',' DIGIT DIGIT DIGIT)*
            while j + 3 < chars.len() && chars[j] == ',' && chars[j + 1..j + 4].iter().all(|d| d.is_ascii_digit()) {
                j += 4;
            }
            if j < chars.len() && chars[j] == '.' {
                // sympy: "5." and "5.x" do not lex.
                if !chars.get(j + 1).is_some_and(|d| d.is_ascii_digit()) {
                    return None;
                }
                j += 1;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
            }
            out.push(Tok::Num(chars[i..j].iter().collect()));
            i = j;
        } else if c.is_ascii_alphabetic() {
            out.push(Tok::Letter(c));
            i += 1;
        } else if "+-*/=<>!()[]{}|^_,.:'".contains(c) {
            out.push(Tok::Punct(c));
            i += 1;
        } else {
            // '%', '&', '$', '#', '"', '?', ';', '@', non-ASCII, …: not in sympy's token set.
            return None;
        }
    }
    Some(out)
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    /// An integer literal (sympy `Integer`, exact).
    Int(i128),
    /// A literal sympy holds more precisely than this: an integer past i128, a decimal of more
    /// than 15 significant digits (a sympy `Float` of that many digits). Compared approximately.
    Num(f64),
    /// A decimal literal of at most 15 significant digits (sympy `Float`, 53-bit binary like f64).
    Float(f64),
    Sym(String),
    Infinite,
    /// Parsed, but sympy's conversion fails (e.g. the number "01").
    Unconvertible,
    Neg(Box<Expr>),
    Bin(char, Box<Expr>, Box<Expr>),
    Fact(Box<Expr>),
    Func(String, Box<Expr>),
    Log(Box<Expr>, Box<Expr>),
    Root(Box<Expr>, Box<Expr>),
    Binom(Box<Expr>, Box<Expr>),
}

/// What a string parses to.
#[derive(Debug)]
enum Parsed {
    Expr(Expr),
    Relation,
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

type P<T> = Option<T>;

const FUNCS: [&str; 21] = [
    "sin", "cos", "tan", "csc", "sec", "cot", "arcsin", "arccos", "arctan", "arccsc", "arcsec", "arccot", "sinh",
    "cosh", "tanh", "arsinh", "arcosh", "artanh", "exp", "ln", "log",
];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Punct(c))
    }

    fn is_cmd(&self, names: &[&str]) -> bool {
        matches!(self.peek(), Some(Tok::Cmd(n)) if names.contains(&n.as_str()))
    }

    fn expect_punct(&mut self, c: char) -> P<()> {
        if self.is_punct(c) {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    fn top(&mut self) -> P<Parsed> {
        let e = self.expr()?;
        let relation = self.peek().is_some_and(|t| match t {
            Tok::Punct(c) => "=<>".contains(*c),
            Tok::Cmd(n) => [
                "le", "leq", "ge", "geq", "lt", "gt", "neq", "ne", "leqslant", "geqslant",
            ]
            .contains(&n.as_str()),
            _ => false,
        });
        // Anything else after a complete expression is ignored, as sympy's parser does.
        Some(if relation { Parsed::Relation } else { Parsed::Expr(e) })
    }

    /// Like ANTLR's adaptive prediction, a loop that cannot continue stops before the operator
    /// (sympy parses "1+" as 1; inside a group the missing closer then fails).
    fn expr(&mut self) -> P<Expr> {
        let mut left = self.mp()?;
        while let Some(Tok::Punct(c @ ('+' | '-'))) = self.peek().cloned() {
            let save = self.pos;
            self.pos += 1;
            let Some(right) = self.mp() else {
                self.pos = save;
                break;
            };
            left = Expr::Bin(c, Box::new(left), Box::new(right));
        }
        Some(left)
    }

    fn mp(&mut self) -> P<Expr> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Punct('*')) => '*',
                Some(Tok::Punct('/' | ':')) => '/',
                Some(Tok::Cmd(n)) if n == "cdot" || n == "times" => '*',
                Some(Tok::Cmd(n)) if n == "div" => '/',
                _ => break,
            };
            let save = self.pos;
            self.pos += 1;
            let Some(right) = self.unary() else {
                self.pos = save;
                break;
            };
            left = Expr::Bin(op, Box::new(left), Box::new(right));
        }
        Some(left)
    }

    fn unary(&mut self) -> P<Expr> {
        match self.peek() {
            Some(Tok::Punct('-')) => {
                self.pos += 1;
                Some(Expr::Neg(Box::new(self.unary()?)))
            }
            Some(Tok::Punct('+')) => {
                self.pos += 1;
                self.unary()
            }
            _ => {
                // postfix+: implicit multiplication; stop (backtrack) where no further factor parses.
                let mut e = self.postfix()?;
                loop {
                    let save = self.pos;
                    match self.postfix() {
                        Some(f) => e = Expr::Bin('*', Box::new(e), Box::new(f)),
                        None => {
                            self.pos = save;
                            break;
                        }
                    }
                }
                Some(e)
            }
        }
    }

    fn postfix(&mut self) -> P<Expr> {
        let mut e = self.exp()?;
        while self.is_punct('!') {
            self.pos += 1;
            e = Expr::Fact(Box::new(e));
        }
        Some(e)
    }

    fn exp(&mut self) -> P<Expr> {
        let mut base = self.comp()?;
        while self.is_punct('^') {
            self.pos += 1;
            let power = if self.is_punct('{') {
                self.group('{', '}')?
            } else {
                self.atom()?
            };
            base = Expr::Bin('^', Box::new(base), Box::new(power));
        }
        Some(base)
    }

    fn group(&mut self, open: char, close: char) -> P<Expr> {
        self.expect_punct(open)?;
        let e = self.expr()?;
        self.expect_punct(close)?;
        Some(e)
    }

    fn braced(&mut self) -> P<Expr> {
        self.group('{', '}')
    }

    fn comp(&mut self) -> P<Expr> {
        match self.peek()?.clone() {
            Tok::Punct('(') => self.group('(', ')'),
            Tok::Punct('[') => self.group('[', ']'),
            Tok::Punct('{') => self.braced(),
            Tok::LBraceLit => {
                self.pos += 1;
                let e = self.expr()?;
                (self.peek() == Some(&Tok::RBraceLit)).then_some(())?;
                self.pos += 1;
                Some(e)
            }
            Tok::Punct('|') => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect_punct('|')?;
                Some(Expr::Func("abs".into(), Box::new(e)))
            }
            Tok::Cmd(name) => match name.as_str() {
                "lfloor" | "lceil" => {
                    self.pos += 1;
                    let e = self.expr()?;
                    let close = if name == "lfloor" { "rfloor" } else { "rceil" };
                    self.is_cmd(&[close]).then_some(())?;
                    self.pos += 1;
                    Some(Expr::Func(name[1..].to_string(), Box::new(e)))
                }
                "sqrt" => {
                    self.pos += 1;
                    let n = if self.is_punct('[') {
                        self.group('[', ']')?
                    } else {
                        Expr::Int(2)
                    };
                    let x = self.braced()?;
                    Some(Expr::Root(Box::new(x), Box::new(n)))
                }
                "overline" => {
                    self.pos += 1;
                    self.braced()
                }
                f if FUNCS.contains(&f) => {
                    self.pos += 1;
                    let base = if f == "log" && self.is_punct('_') {
                        self.pos += 1;
                        Some(if self.is_punct('{') {
                            self.braced()?
                        } else {
                            self.atom()?
                        })
                    } else {
                        None
                    };
                    let arg = match self.peek() {
                        Some(Tok::Punct('(')) => self.group('(', ')')?,
                        Some(Tok::Punct('{')) => self.braced()?,
                        _ => self.postfix()?,
                    };
                    Some(match base {
                        Some(b) => Expr::Log(Box::new(arg), Box::new(b)),
                        None => Expr::Func(f.to_string(), Box::new(arg)),
                    })
                }
                _ => self.atom(),
            },
            _ => self.atom(),
        }
    }

    /// A number, a symbol (with subscript and primes), `\frac`, `\binom`, `\infty`.
    fn atom(&mut self) -> P<Expr> {
        match self.peek()?.clone() {
            Tok::Num(text) => {
                self.pos += 1;
                let digits = text.replace(',', "");
                // sympy.Number("01") fails after parsing (Python int literal rules; "00" and
                // "007.5" are fine): the whole comparison fails.
                if !digits.contains('.') && digits.len() > 1 && digits.starts_with('0') && digits.contains(|c| c != '0')
                {
                    return Some(Expr::Unconvertible);
                }
                if digits.contains('.') {
                    let significant = digits
                        .trim_start_matches(['0', '.'])
                        .chars()
                        .filter(char::is_ascii_digit)
                        .count();
                    let value = digits.parse::<f64>().ok()?;
                    Some(if significant <= 15 {
                        Expr::Float(value)
                    } else {
                        Expr::Num(value)
                    })
                } else {
                    match digits.parse::<i128>() {
                        Ok(n) => Some(Expr::Int(n)),
                        Err(_) => digits.parse::<f64>().ok().map(Expr::Num),
                    }
                }
            }
            Tok::Letter(c) => {
                self.pos += 1;
                self.symbol_tail(c.to_string())
            }
            Tok::Cmd(name) => {
                self.pos += 1;
                match name.as_str() {
                    "frac" | "dfrac" | "tfrac" => {
                        let (num, den) = self.frac_args()?;
                        Some(Expr::Bin('/', Box::new(num), Box::new(den)))
                    }
                    "binom" | "dbinom" | "tbinom" => {
                        let n = self.braced()?;
                        let k = self.braced()?;
                        Some(Expr::Binom(Box::new(n), Box::new(k)))
                    }
                    "infty" => Some(Expr::Infinite),
                    // Operators and closers are not atoms.
                    "cdot" | "times" | "div" | "rfloor" | "rceil" | "le" | "leq" | "ge" | "geq" | "lt" | "gt"
                    | "neq" | "ne" | "sqrt" => None,
                    _ => self.symbol_tail(format!("\\{name}")),
                }
            }
            _ => None,
        }
    }

    /// `\frac{a}{b}`, or with single digits: `\frac12`, `\frac{1}{2}` (sympy reads `\frac123` as
    /// (1/2)·3: the digits after the first two stay for what follows).
    fn frac_args(&mut self) -> P<(Expr, Expr)> {
        let num = self.frac_arg()?;
        let den = self.frac_arg()?;
        Some((num, den))
    }

    fn frac_arg(&mut self) -> P<Expr> {
        match self.peek()?.clone() {
            // The lexer splits the digits right after \frac into one-digit numbers.
            Tok::Num(t) if t.len() == 1 && t.chars().all(|c| c.is_ascii_digit()) => {
                self.pos += 1;
                Some(Expr::Int(i128::from(t.chars().next()?.to_digit(10)?)))
            }
            _ => self.braced(),
        }
    }

    fn symbol_tail(&mut self, mut name: String) -> P<Expr> {
        if self.is_punct('_') {
            self.pos += 1;
            let start = self.pos;
            if self.is_punct('{') {
                self.braced()?;
            } else {
                self.atom()?;
            }
            name.push('_');
            name.push_str(&format!("{:?}", &self.toks[start..self.pos]));
        }
        while self.is_punct('\'') {
            self.pos += 1;
            name.push('\'');
        }
        Some(Expr::Sym(name))
    }
}

fn parse(s: &str) -> Option<Parsed> {
    let toks = lex(s)?;
    let mut p = Parser { toks, pos: 0 };
    p.top()
}

fn symbols(e: &Expr, out: &mut BTreeSet<String>) -> bool {
    match e {
        Expr::Int(_) | Expr::Num(_) | Expr::Float(_) => true,
        Expr::Infinite | Expr::Unconvertible => false,
        Expr::Sym(s) => {
            out.insert(s.clone());
            true
        }
        Expr::Neg(a) | Expr::Fact(a) | Expr::Func(_, a) => symbols(a, out),
        Expr::Bin(_, a, b) | Expr::Log(a, b) | Expr::Root(a, b) | Expr::Binom(a, b) => {
            symbols(a, out) && symbols(b, out)
        }
    }
}

fn factorial(n: f64) -> f64 {
    if n < 0.0 || n.fract() != 0.0 || n > 170.0 {
        return f64::NAN;
    }
    (1..=n as u64).map(|i| i as f64).product()
}

fn eval(e: &Expr, env: &dyn Fn(&str) -> f64) -> f64 {
    match e {
        Expr::Int(n) => *n as f64,
        Expr::Num(v) | Expr::Float(v) => *v,
        Expr::Sym(s) => env(s),
        Expr::Infinite | Expr::Unconvertible => f64::NAN,
        Expr::Neg(a) => -eval(a, env),
        Expr::Bin(op, a, b) => {
            let (x, y) = (eval(a, env), eval(b, env));
            match op {
                '+' => x + y,
                '-' => x - y,
                '*' => x * y,
                '/' => {
                    if y == 0.0 {
                        f64::NAN
                    } else {
                        x / y
                    }
                }
                _ => {
                    if y.fract() == 0.0 && y.abs() < 1e6 {
                        x.powi(y as i32)
                    } else {
                        x.powf(y)
                    }
                }
            }
        }
        Expr::Fact(a) => factorial(eval(a, env)),
        Expr::Root(x, n) => {
            let (x, n) = (eval(x, env), eval(n, env));
            if n == 2.0 {
                x.sqrt()
            } else if x < 0.0 && n.fract() == 0.0 && (n as i64) % 2 == 1 {
                // sympy's root() is the principal (complex) root here; never equal to a real.
                f64::NAN
            } else {
                x.powf(1.0 / n)
            }
        }
        Expr::Log(x, b) => eval(x, env).ln() / eval(b, env).ln(),
        Expr::Binom(n, k) => {
            let (n, k) = (eval(n, env), eval(k, env));
            if k.fract() != 0.0 || k < 0.0 {
                return f64::NAN;
            }
            (0..k as u64).map(|i| (n - i as f64) / (i as f64 + 1.0)).product()
        }
        Expr::Func(f, a) => {
            let x = eval(a, env);
            match f.as_str() {
                "abs" => x.abs(),
                "floor" => x.floor(),
                "ceil" => x.ceil(),
                "sin" => x.sin(),
                "cos" => x.cos(),
                "tan" => x.tan(),
                "csc" => 1.0 / x.sin(),
                "sec" => 1.0 / x.cos(),
                "cot" => 1.0 / x.tan(),
                "arcsin" => x.asin(),
                "arccos" => x.acos(),
                "arctan" => x.atan(),
                "arccsc" => (1.0 / x).asin(),
                "arcsec" => (1.0 / x).acos(),
                "arccot" => (1.0 / x).atan(),
                "sinh" => x.sinh(),
                "cosh" => x.cosh(),
                "tanh" => x.tanh(),
                "arsinh" => x.asinh(),
                "arcosh" => x.acosh(),
                "artanh" => x.atanh(),
                "exp" => x.exp(),
                _ => x.ln(),
            }
        }
    }
}

/// A constant as sympy computes it: exact `Integer`/`Rational` arithmetic until a decimal
/// literal (`Float`) takes part, then 53-bit binary floating point, which f64 reproduces for
/// these operations. `simplify(a - b) == 0` on two of them is then plain equality, so
/// `1000000001` is not `1000000000` and `0.1+0.2` is not `0.3`, as in lm-eval.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Constant {
    /// numerator, denominator > 0, in lowest terms.
    Rational(i128, i128),
    Float(f64),
}

impl Constant {
    /// `e`'s value, or None where it is not a rational or Float constant (roots, functions,
    /// symbols, numbers past i128): those are compared to a tolerance instead.
    fn of(e: &Expr) -> Option<Self> {
        match e {
            Expr::Int(n) => Some(Self::Rational(*n, 1)),
            Expr::Float(v) => Some(Self::Float(*v)),
            Expr::Neg(a) => Self::Rational(0, 1).combine('-', Self::of(a)?),
            Expr::Bin(op, a, b) => Self::of(a)?.combine(*op, Self::of(b)?),
            Expr::Fact(a) => match Self::of(a)? {
                Self::Rational(n, 1) if (0..=33).contains(&n) => Some(Self::Rational((1..=n).product(), 1)),
                _ => None,
            },
            Expr::Binom(n, k) => match (Self::of(n)?, Self::of(k)?) {
                (Self::Rational(n, 1), Self::Rational(k, 1)) if n >= 0 && (0..=n).contains(&k) => (0..k)
                    .try_fold(Self::Rational(1, 1), |acc, i| {
                        acc.combine('*', Self::Rational(n - i, i + 1))
                    }),
                _ => None,
            },
            _ => None,
        }
    }

    fn rational(num: i128, den: i128) -> Option<Self> {
        // i128::MIN has no negation (and a gcd of 2^127 no i128).
        if den == 0 || num == i128::MIN || den == i128::MIN {
            return None;
        }
        let g = gcd(num.unsigned_abs(), den.unsigned_abs()).max(1) as i128;
        let sign = if den < 0 { -1 } else { 1 };
        Some(Self::Rational(sign * num / g, sign * den / g))
    }

    fn to_f64(self) -> f64 {
        match self {
            Self::Rational(n, d) => n as f64 / d as f64,
            Self::Float(v) => v,
        }
    }

    /// `self op other`; None on overflow, a zero divisor or a power that leaves the rationals.
    fn combine(self, op: char, other: Self) -> Option<Self> {
        match (self, other) {
            (Self::Rational(p, q), Self::Rational(r, s)) => match op {
                '+' => Self::rational(p.checked_mul(s)?.checked_add(r.checked_mul(q)?)?, q.checked_mul(s)?),
                '-' => Self::rational(p.checked_mul(s)?.checked_sub(r.checked_mul(q)?)?, q.checked_mul(s)?),
                '*' => Self::rational(p.checked_mul(r)?, q.checked_mul(s)?),
                '/' => Self::rational(p.checked_mul(s)?, q.checked_mul(r)?),
                _ if s == 1 && r.unsigned_abs() <= 256 => {
                    let e = r.unsigned_abs() as u32;
                    let (num, den) = (p.checked_pow(e)?, q.checked_pow(e)?);
                    if r >= 0 {
                        Self::rational(num, den)
                    } else {
                        Self::rational(den, num)
                    }
                }
                _ => None,
            },
            _ => {
                let (x, y) = (self.to_f64(), other.to_f64());
                let v = match op {
                    '+' => x + y,
                    '-' => x - y,
                    '*' => x * y,
                    '/' if y != 0.0 => x / y,
                    '/' => return None,
                    _ => x.powf(y),
                };
                v.is_finite().then_some(Self::Float(v))
            }
        }
    }

    fn equals(self, other: Self) -> bool {
        match (self, other) {
            (Self::Rational(..), Self::Rational(..)) => self == other,
            _ => self.to_f64() == other.to_f64(),
        }
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn close(a: f64, b: f64) -> bool {
    a.is_finite() && b.is_finite() && (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// A complex value for a symbol, fixed per (name, round): sympy's symbols are complex, so an
/// identity that holds only for positive reals (`\sqrt{x^2} = x`, `|x| = x`) must fail. The real
/// part is negative in odd rounds, positive in even ones; the imaginary part is never zero.
fn symbol_value(name: &str, round: u64) -> Complex {
    let unit = |salt: u64| {
        // FNV-1a, then a SplitMix64 finaliser: uniform in [0, 1).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ (round * 2 + salt).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= h >> 30;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 27;
        (h >> 11) as f64 / (1u64 << 53) as f64
    };
    let re = 0.5 + 2.0 * unit(0);
    let im = 0.3 + 1.2 * unit(1);
    Complex::new(if round % 2 == 1 { -re } else { re }, im)
}

/// [`eval`] over the complex numbers, with principal branches as sympy takes them.
fn eval_complex(e: &Expr, env: &dyn Fn(&str) -> Complex) -> Complex {
    let value = |e: &Expr| eval_complex(e, env);
    match e {
        Expr::Int(n) => Complex::real(*n as f64),
        Expr::Num(v) | Expr::Float(v) => Complex::real(*v),
        Expr::Sym(s) => env(s),
        Expr::Infinite | Expr::Unconvertible => complex::NAN,
        Expr::Neg(a) => -value(a),
        Expr::Bin(op, a, b) => {
            let (x, y) = (value(a), value(b));
            match op {
                '+' => x + y,
                '-' => x - y,
                '*' => x * y,
                '/' => x / y,
                _ => x.pow(y),
            }
        }
        Expr::Fact(a) => match value(a).as_integer() {
            Some(n) => Complex::real(factorial(n)),
            None => complex::NAN,
        },
        Expr::Root(x, n) => {
            let (x, n) = (value(x), value(n));
            if n.as_integer() == Some(2.0) {
                x.sqrt()
            } else {
                x.pow(Complex::real(1.0) / n)
            }
        }
        Expr::Log(x, b) => value(x).ln() / value(b).ln(),
        Expr::Binom(n, k) => {
            let n = value(n);
            match value(k).as_integer() {
                Some(k) if k >= 0.0 => (0..k as u64).fold(Complex::real(1.0), |acc, i| {
                    acc * (n - Complex::real(i as f64)) / Complex::real(i as f64 + 1.0)
                }),
                _ => complex::NAN,
            }
        }
        Expr::Func(f, a) => {
            let x = value(a);
            let one = Complex::real(1.0);
            match f.as_str() {
                "abs" => Complex::real(x.modulus()),
                "floor" => x.parts(f64::floor),
                "ceil" => x.parts(f64::ceil),
                "sin" => x.sin(),
                "cos" => x.cos(),
                "tan" => x.sin() / x.cos(),
                "csc" => one / x.sin(),
                "sec" => one / x.cos(),
                "cot" => x.cos() / x.sin(),
                "arcsin" => x.asin(),
                "arccos" => x.acos(),
                "arctan" => x.atan(),
                "arccsc" => (one / x).asin(),
                "arcsec" => (one / x).acos(),
                "arccot" => (one / x).atan(),
                "sinh" => x.sinh(),
                "cosh" => x.cosh(),
                "tanh" => x.sinh() / x.cosh(),
                "arsinh" => x.asinh(),
                "arcosh" => x.acosh(),
                "artanh" => x.atanh(),
                "exp" => x.exp(),
                _ => x.ln(),
            }
        }
    }
}

/// ∞ or a division by a constant zero (sympy: `oo`, `zoo`; `a - a` is then `nan`), or
/// something sympy cannot convert.
fn degenerate(e: &Expr) -> bool {
    match e {
        Expr::Infinite | Expr::Unconvertible => true,
        Expr::Int(_) | Expr::Num(_) | Expr::Float(_) | Expr::Sym(_) => false,
        Expr::Bin('/', a, b) => {
            let mut syms = BTreeSet::new();
            (symbols(b, &mut syms) && syms.is_empty() && eval(b, &|_| f64::NAN) == 0.0)
                || degenerate(a)
                || degenerate(b)
        }
        Expr::Neg(a) | Expr::Fact(a) | Expr::Func(_, a) => degenerate(a),
        Expr::Bin(_, a, b) | Expr::Log(a, b) | Expr::Root(a, b) | Expr::Binom(a, b) => degenerate(a) || degenerate(b),
    }
}

/// minerva_math's `is_equiv(x1, x2)` for two normalized answers, without sympy (see the module
/// documentation for what is and is not reproduced).
pub fn is_equiv(a: &str, b: &str) -> bool {
    let (Some(Parsed::Expr(x)), Some(Parsed::Expr(y))) = (parse(a), parse(b)) else {
        return false;
    };
    if degenerate(&x) || degenerate(&y) {
        return false;
    }
    // sympy cancels a - a exactly, whatever the size of a (2^{2005}, 1/2004!).
    if x == y {
        return true;
    }
    let mut syms = BTreeSet::new();
    if !symbols(&x, &mut syms) || !symbols(&y, &mut syms) {
        return false;
    }
    if syms.is_empty() {
        if let (Some(u), Some(v)) = (Constant::of(&x), Constant::of(&y)) {
            return u.equals(v);
        }
        let none = |_: &str| f64::NAN;
        return close(eval(&x, &none), eval(&y, &none));
    }
    // Symbolic: equal values wherever both are defined, at 2+ of 6 complex assignments.
    let mut defined = 0;
    for round in 1..=6 {
        let env = |s: &str| symbol_value(s, round);
        let (u, v) = (eval_complex(&x, &env), eval_complex(&y, &env));
        match (u.is_finite(), v.is_finite()) {
            (true, true) if u.close(v) => defined += 1,
            (false, false) => {}
            _ => return false,
        }
    }
    defined >= 2
}

#[cfg(test)]
mod tests {
    use super::is_equiv;

    /// Exact as sympy's Integer and Rational arithmetic; past i128, the tolerance.
    #[test]
    fn rational_constants_are_compared_exactly() {
        assert!(is_equiv("2^{100}", "1267650600228229401496703205376"));
        assert!(!is_equiv("2^{100}+1", "1267650600228229401496703205376"));
        assert!(is_equiv("\\frac{2^{100}}{4}", "2^{98}"));
        assert!(is_equiv("-\\frac{3}{6}", "-0.5"));
        // i128::MIN on the way (-2^127, whose negation overflows): the tolerance, not a panic
        // or a wrapped value.
        assert!(is_equiv("\\frac{1}{-2^{126}-2^{126}}", "-\\frac{1}{2^{127}}"));
        assert!(!is_equiv("\\frac{3}{-2^{126}-2^{126}}", "1"));
        assert!(!is_equiv("\\frac{1}{3}", "0.333333333333333"));
        // Past i128, or past 15 digits (sympy's Float then has more bits than f64): compared to
        // a tolerance, as before.
        assert!(is_equiv("2^{130}", "1361129467683753853853498429727072845824"));
    }

    #[test]
    fn numeric_and_symbolic_equivalence() {
        assert!(is_equiv("\\frac{1}{2}", "0.5"));
        assert!(is_equiv("\\dfrac{1}{2}", "\\frac{1}{2}"));
        assert!(is_equiv("2\\sqrt{2}", "\\sqrt{8}"));
        assert!(is_equiv("x^2+1", "1+x^2"));
        assert!(is_equiv("\\text{Monday}", "\\text{Monday}"));
        assert!(is_equiv("3!", "6"));
        assert!(is_equiv("\\sqrt[3]{8}", "2"));
        assert!(is_equiv("1,2", "1"));
        assert!(!is_equiv("0.333", "\\frac{1}{3}"));
        assert!(!is_equiv("x", "y"));
        assert!(!is_equiv("-5", "5"));
    }

    #[test]
    fn what_sympy_cannot_parse_is_never_equal() {
        for s in [
            "(1,2)",
            "[2,5)",
            ".5",
            "01",
            "5\\%",
            "",
            "\\infty",
            "\\frac{\\sqrt3}{2}",
            "x<1",
            "\\frac{9}{{}5}",
        ] {
            assert!(!is_equiv(s, s), "{s}");
        }
        assert!(!is_equiv(
            "\\begin{pmatrix}1\\\\2\\end{pmatrix}",
            "\\begin{pmatrix}1\\\\2\\end{pmatrix}"
        ));
    }
}
