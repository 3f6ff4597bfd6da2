//! PATTERNS: the regular-expression subset a string parameter's `pattern`
//! may use, its matcher, and its translation to a JavaScript `RegExp` with
//! the same meaning. One parser serves both, so the server, the WASM module
//! and the validators core generates for browsers accept exactly the same
//! values. Pure, no I/O.
//!
//! A pattern must match the WHOLE value, compared by Unicode scalar values
//! (what the server counts), in time linear in the value's length (no
//! backtracking: a Thompson NFA). The subset:
//!
//! | construct | meaning |
//! |---|---|
//! | `a`, `\.` | the character itself; `\` before any of ``\ . * + ? ( ) [ ] { } \| ^ $ - /`` escapes it |
//! | `\n \r \t \f \v` | those control characters |
//! | `.` | any character except `\n` |
//! | `\d \w \s` | `[0-9]`, `[A-Za-z0-9_]`, `[ \t\n\r\f\v]` (ASCII only); `\D \W \S` their complements |
//! | `[abc]`, `[a-z0-9_]`, `[^…]` | classes with ranges and the escapes above |
//! | `(…)`, `(?:…)`, `a\|b` | groups (none captures) and alternation |
//! | `* + ? {n} {n,} {n,m}` | repetition (greedy; `m` ≤ 1000) |
//! | `^` first, `$` last | allowed, and change nothing (the whole value must match) |
//!
//! Anything else — backreferences, lookaround, `\b`, lazy or possessive
//! quantifiers, inline flags, `\p{…}`, named groups — is refused when the
//! definition is created, naming the construct and where it is.

use crate::text::quote;

/// A repetition's largest count.
pub const MAX_REPEAT: u32 = 1000;
/// The most NFA states a pattern may compile to (repetitions expanded).
pub const MAX_STATES: usize = 20_000;

/// A parsed, compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    program: Vec<Inst>,
    classes: Vec<Class>,
    /// The same pattern as a JavaScript `RegExp` source, for the `u` flag.
    js: String,
}

/// A set of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Class {
    ranges: Vec<(char, char)>,
    negated: bool,
}

impl Class {
    fn contains(&self, c: char) -> bool {
        self.ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != self.negated
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Empty,
    Char(char),
    /// Any character but `\n`.
    Any,
    Class(Class),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inst {
    Char(char),
    Any,
    Class(usize),
    Split(usize, usize),
    Jump(usize),
    Match,
}

/// Why a pattern is refused: a sentence naming the construct and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl crate::text::Piece for PatternError {
    fn put(&self, out: &mut String) {
        out.push_str(&self.0);
    }
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Pattern {
    /// Parses and compiles `source`.
    pub fn parse(source: &str) -> Result<Self, PatternError> {
        let chars: Vec<char> = source.chars().collect();
        let mut parser = Parser { chars, at: 0 };
        if parser.peek() == Some('^') {
            parser.at += 1;
        }
        let node = parser.alternation()?;
        if parser.peek() == Some('$') && parser.at + 1 == parser.chars.len() {
            parser.at += 1;
        }
        if let Some(c) = parser.peek() {
            return Err(parser.refuse(match c {
                ')' => return Err(parser.malformed("an unmatched ')'")),
                '$' => "'$' anywhere but at the very end".to_owned(),
                other => quote(&other.to_string()),
            }));
        }
        let mut compiler = Compiler::default();
        compiler.emit(&node)?;
        compiler.push(Inst::Match)?;
        Ok(Self {
            program: compiler.program,
            classes: compiler.classes,
            js: crate::text::msg!["^(?:", js_source(&node), ")$"],
        })
    }

    /// Whether the whole of `value` matches.
    pub fn is_match(&self, value: &str) -> bool {
        let mut current = Threads::new(self.program.len());
        let mut next = Threads::new(self.program.len());
        self.add(&mut current, 0);
        for c in value.chars() {
            if current.list.is_empty() {
                return false;
            }
            next.clear();
            for i in 0..current.list.len() {
                let pc = current.list[i];
                let step = match self.program[pc] {
                    Inst::Char(want) => want == c,
                    Inst::Any => c != '\n',
                    Inst::Class(k) => self.classes[k].contains(c),
                    Inst::Split(..) | Inst::Jump(_) | Inst::Match => false,
                };
                if step {
                    self.add(&mut next, pc + 1);
                }
            }
            std::mem::swap(&mut current, &mut next);
        }
        current
            .list
            .iter()
            .any(|pc| self.program[*pc] == Inst::Match)
    }

    /// The pattern as a deterministic automaton over character classes,
    /// if it has at most `max_states` states: what generated JavaScript
    /// validators match with (linear time and exactly this matcher's
    /// answers, where a backtracking `RegExp` could take exponential time
    /// on a hostile pattern). `None` when larger.
    pub fn dfa(&self, max_states: usize) -> Option<Dfa> {
        // Classes of characters no instruction tells apart: cut the code
        // space at every boundary an instruction has.
        let mut bounds: Vec<u32> = vec![0];
        let mut cut = |lo: char, hi: char| {
            bounds.push(lo as u32);
            bounds.push(hi as u32 + 1);
        };
        for inst in &self.program {
            match *inst {
                Inst::Char(c) => cut(c, c),
                Inst::Any => cut('\n', '\n'),
                Inst::Class(k) => {
                    for (lo, hi) in &self.classes[k].ranges {
                        cut(*lo, *hi);
                    }
                }
                Inst::Split(..) | Inst::Jump(_) | Inst::Match => {}
            }
        }
        bounds.sort_unstable();
        bounds.dedup();
        bounds.retain(|b| *b <= char::MAX as u32);
        // Each class by one character in it (none for the surrogate gap,
        // which no string holds).
        let representatives: Vec<Option<char>> = bounds
            .iter()
            .enumerate()
            .map(|(i, lo)| {
                let hi = bounds.get(i + 1).map_or(char::MAX as u32, |b| b - 1);
                (*lo..=hi).find_map(char::from_u32)
            })
            .collect();
        let start = self.closure(&[0]);
        let mut states: Vec<Vec<usize>> = vec![Vec::new(), start];
        let mut next = Vec::new();
        let mut at = 0;
        while at < states.len() {
            for c in &representatives {
                let target = match c {
                    Some(c) => {
                        let stepped: Vec<usize> = states[at]
                            .iter()
                            .filter(|pc| self.steps(**pc, *c))
                            .map(|pc| pc + 1)
                            .collect();
                        self.closure(&stepped)
                    }
                    None => Vec::new(),
                };
                let index = match states.iter().position(|s| *s == target) {
                    Some(i) => i,
                    None if states.len() < max_states => {
                        states.push(target);
                        states.len() - 1
                    }
                    None => return None,
                };
                next.push(index as u16);
            }
            at += 1;
        }
        let accept = states
            .iter()
            .map(|set| set.iter().any(|pc| self.program[*pc] == Inst::Match))
            .collect();
        Some(Dfa {
            bounds,
            next,
            accept,
        })
    }

    /// Whether instruction `pc` consumes `c`.
    fn steps(&self, pc: usize, c: char) -> bool {
        match self.program[pc] {
            Inst::Char(want) => want == c,
            Inst::Any => c != '\n',
            Inst::Class(k) => self.classes[k].contains(c),
            Inst::Split(..) | Inst::Jump(_) | Inst::Match => false,
        }
    }

    /// The instructions reachable from `pcs` without a character, sorted.
    fn closure(&self, pcs: &[usize]) -> Vec<usize> {
        let mut threads = Threads::new(self.program.len());
        for pc in pcs {
            self.add(&mut threads, *pc);
        }
        let mut set = threads.list;
        set.sort_unstable();
        set
    }

    /// The source of a JavaScript `RegExp`, to be used with the `u` flag,
    /// that matches exactly the values this pattern matches.
    pub fn js_source(&self) -> &str {
        &self.js
    }

    /// Adds `pc` and everything reachable from it without a character.
    fn add(&self, threads: &mut Threads, pc: usize) {
        let mut stack = vec![pc];
        while let Some(pc) = stack.pop() {
            if !threads.insert(pc) {
                continue;
            }
            match self.program[pc] {
                Inst::Split(a, b) => {
                    stack.push(b);
                    stack.push(a);
                }
                Inst::Jump(a) => stack.push(a),
                Inst::Char(_) | Inst::Any | Inst::Class(_) | Inst::Match => {}
            }
        }
    }
}

/// A pattern as a deterministic automaton. Characters fall into classes:
/// class `k` holds the code points from `bounds[k]` up to `bounds[k + 1]`
/// (exclusive; the last class runs to U+10FFFF). State 0 rejects
/// everything, state 1 starts; from state `s`, a character of class `k`
/// leads to `next[s * classes + k]`. The value matches if the state after
/// its last character is in `accept`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dfa {
    pub bounds: Vec<u32>,
    pub next: Vec<u16>,
    pub accept: Vec<bool>,
}

impl Dfa {
    /// Whether the whole of `value` matches (the generated JavaScript does
    /// the same steps; this is for tests against [`Pattern::is_match`]).
    pub fn is_match(&self, value: &str) -> bool {
        let classes = self.bounds.len();
        let mut state = 1;
        for c in value.chars() {
            let class = self.bounds.partition_point(|b| *b <= c as u32) - 1;
            state = usize::from(self.next[state * classes + class]);
            if state == 0 {
                return false;
            }
        }
        self.accept[state]
    }
}

/// A set of NFA states, in insertion order.
struct Threads {
    list: Vec<usize>,
    seen: Vec<bool>,
}

impl Threads {
    fn new(size: usize) -> Self {
        Self {
            list: Vec::new(),
            seen: vec![false; size],
        }
    }

    fn insert(&mut self, pc: usize) -> bool {
        if self.seen[pc] {
            return false;
        }
        self.seen[pc] = true;
        self.list.push(pc);
        true
    }

    fn clear(&mut self) {
        for pc in self.list.drain(..) {
            self.seen[pc] = false;
        }
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

const DIGITS: &[(char, char)] = &[('0', '9')];
const WORD: &[(char, char)] = &[('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')];
const SPACE: &[(char, char)] = &[
    ('\t', '\t'),
    ('\n', '\n'),
    ('\u{b}', '\u{b}'),
    ('\u{c}', '\u{c}'),
    ('\r', '\r'),
    (' ', ' '),
];
/// Characters `\` may escape to stand for themselves.
const ESCAPABLE: &str = "\\.*+?()[]{}|^$-/";

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    /// A construct outside the subset.
    fn refuse(&self, what: String) -> PatternError {
        PatternError(crate::text::msg![
            what,
            " at character ",
            self.at + 1,
            " is not supported (patterns use the subset the README lists)"
        ])
    }

    /// A malformed pattern.
    fn malformed(&self, what: &str) -> PatternError {
        PatternError(crate::text::msg![what, " at character ", self.at + 1])
    }

    fn alternation(&mut self) -> Result<Node, PatternError> {
        let mut branches = vec![self.concatenation()?];
        while self.peek() == Some('|') {
            self.at += 1;
            branches.push(self.concatenation()?);
        }
        Ok(if branches.len() == 1 {
            branches.remove(0)
        } else {
            Node::Alt(branches)
        })
    }

    fn concatenation(&mut self) -> Result<Node, PatternError> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            if c == '$' && self.at + 1 == self.chars.len() {
                break;
            }
            let atom = self.atom()?;
            items.push(self.repetition(atom)?);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.remove(0),
            _ => Node::Concat(items),
        })
    }

    fn atom(&mut self) -> Result<Node, PatternError> {
        let Some(c) = self.peek() else {
            return Ok(Node::Empty);
        };
        match c {
            '(' => {
                let open = self.at;
                self.at += 1;
                if self.peek() == Some('?') {
                    if self.chars.get(self.at + 1) == Some(&':') {
                        self.at += 2;
                    } else {
                        let end = (self.at + 3).min(self.chars.len());
                        let text: String = self.chars[self.at - 1..end].iter().collect();
                        self.at -= 1;
                        return Err(self.refuse(crate::text::msg![
                            quote(&text),
                            " (only plain and (?:...) groups)"
                        ]));
                    }
                }
                let inner = self.alternation()?;
                if self.peek() != Some(')') {
                    self.at = open;
                    return Err(self.malformed("an unclosed '('"));
                }
                self.at += 1;
                Ok(inner)
            }
            '[' => self.class(),
            '.' => {
                self.at += 1;
                Ok(Node::Any)
            }
            '\\' => self.escape(false).map(|e| match e {
                Escaped::Char(c) => Node::Char(c),
                Escaped::Class(class) => Node::Class(class),
            }),
            '*' | '+' | '?' | '{' => Err(self.malformed(&crate::text::msg![
                quote(&c.to_string()),
                " with nothing to repeat"
            ])),
            '^' => Err(self.refuse("'^' anywhere but at the very start".to_owned())),
            '$' => Err(self.refuse("'$' anywhere but at the very end".to_owned())),
            ']' | '}' => {
                Err(self.malformed(&crate::text::msg!["an unmatched ", quote(&c.to_string())]))
            }
            other => {
                self.at += 1;
                Ok(Node::Char(other))
            }
        }
    }

    fn repetition(&mut self, atom: Node) -> Result<Node, PatternError> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => return self.counted(atom),
            _ => return Ok(atom),
        };
        self.at += 1;
        self.no_modifier()?;
        Ok(Node::Repeat {
            node: Box::new(atom),
            min,
            max,
        })
    }

    /// Refuses a lazy (`*?`) or possessive (`*+`) quantifier, or a second
    /// quantifier on the same atom.
    fn no_modifier(&self) -> Result<(), PatternError> {
        match self.peek() {
            Some(c @ ('?' | '+' | '*' | '{')) => Err(self.refuse(crate::text::msg![
                quote(&c.to_string()),
                " after a quantifier (lazy, possessive or repeated quantifiers)"
            ])),
            _ => Ok(()),
        }
    }

    fn counted(&mut self, atom: Node) -> Result<Node, PatternError> {
        let start = self.at;
        self.at += 1;
        let min = self.number();
        let max = if self.peek() == Some(',') {
            self.at += 1;
            if self.peek() == Some('}') {
                None
            } else {
                Some(self.number())
            }
        } else {
            Some(min)
        };
        let bad = |parser: &mut Self, why: &str| {
            parser.at = start;
            Err(parser.malformed(&crate::text::msg!["a repetition ", why]))
        };
        if self.peek() != Some('}') {
            return bad(self, "that is not {n}, {n,} or {n,m}");
        }
        self.at += 1;
        let (Some(min), max) = (min, max) else {
            return bad(self, "without a count");
        };
        let max = match max {
            None => None,
            Some(None) => return bad(self, "without an upper count"),
            Some(Some(m)) => Some(m),
        };
        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT) {
            return bad(self, &crate::text::msg!["above ", MAX_REPEAT]);
        }
        if max.is_some_and(|m| m < min) {
            return bad(self, "whose upper count is below its lower");
        }
        self.no_modifier()?;
        Ok(Node::Repeat {
            node: Box::new(atom),
            min,
            max,
        })
    }

    /// Decimal digits; `None` when there are none.
    fn number(&mut self) -> Option<u32> {
        let start = self.at;
        let mut n: u32 = 0;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
            n = n.saturating_mul(10).saturating_add(d);
            self.at += 1;
        }
        (self.at > start).then_some(n)
    }

    fn escape(&mut self, in_class: bool) -> Result<Escaped, PatternError> {
        self.at += 1;
        let Some(c) = self.peek() else {
            self.at -= 1;
            return Err(self.malformed("a '\\' at the end"));
        };
        self.at += 1;
        let class = |ranges: &[(char, char)], negated| {
            Ok(Escaped::Class(Class {
                ranges: ranges.to_vec(),
                negated,
            }))
        };
        match c {
            'd' => class(DIGITS, false),
            'D' => class(DIGITS, true),
            'w' => class(WORD, false),
            'W' => class(WORD, true),
            's' => class(SPACE, false),
            'S' => class(SPACE, true),
            'n' => Ok(Escaped::Char('\n')),
            'r' => Ok(Escaped::Char('\r')),
            't' => Ok(Escaped::Char('\t')),
            'f' => Ok(Escaped::Char('\u{c}')),
            'v' => Ok(Escaped::Char('\u{b}')),
            c if ESCAPABLE.contains(c) => Ok(Escaped::Char(c)),
            other => {
                self.at -= 2;
                let place = if in_class { " in a class" } else { "" };
                Err(self.refuse(crate::text::msg![
                    quote(&crate::text::msg!["\\", other]),
                    place
                ]))
            }
        }
    }

    fn class(&mut self) -> Result<Node, PatternError> {
        let open = self.at;
        self.at += 1;
        let negated = self.peek() == Some('^');
        if negated {
            self.at += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                self.at = open;
                return Err(self.malformed("an unclosed '['"));
            };
            if c == ']' && !first {
                self.at += 1;
                break;
            }
            first = false;
            let low = match c {
                '\\' => match self.escape(true)? {
                    Escaped::Char(c) => c,
                    Escaped::Class(class) => {
                        if class.negated {
                            self.at -= 2;
                            return Err(self
                                .refuse("a negated escape (\\D, \\W, \\S) in a class".to_owned()));
                        }
                        ranges.extend(class.ranges);
                        continue;
                    }
                },
                '[' => return Err(self.refuse("a '[' in a class (escape it as \\[)".to_owned())),
                ']' => return Err(self.malformed("an empty class")),
                other => {
                    self.at += 1;
                    other
                }
            };
            if self.peek() == Some('-') && self.chars.get(self.at + 1).is_some_and(|c| *c != ']') {
                self.at += 1;
                let high = match self.peek() {
                    Some('\\') => match self.escape(true)? {
                        Escaped::Char(c) => c,
                        Escaped::Class(_) => {
                            return Err(self.refuse("a class escape as a range's end".to_owned()))
                        }
                    },
                    Some(c) => {
                        self.at += 1;
                        c
                    }
                    None => return Err(self.malformed("an unclosed '['")),
                };
                if high < low {
                    return Err(self.malformed(&crate::text::msg![
                        "the range ",
                        quote(&crate::text::msg![low, "-", high]),
                        " (its end is before its start)"
                    ]));
                }
                ranges.push((low, high));
            } else {
                ranges.push((low, low));
            }
        }
        Ok(Node::Class(Class { ranges, negated }))
    }
}

enum Escaped {
    Char(char),
    Class(Class),
}

#[derive(Default)]
struct Compiler {
    program: Vec<Inst>,
    classes: Vec<Class>,
}

impl Compiler {
    fn push(&mut self, inst: Inst) -> Result<usize, PatternError> {
        if self.program.len() >= MAX_STATES {
            return Err(PatternError(crate::text::msg![
                "the pattern is too complex: its repetitions expand to more than ",
                MAX_STATES,
                " states"
            ]));
        }
        self.program.push(inst);
        Ok(self.program.len() - 1)
    }

    fn emit(&mut self, node: &Node) -> Result<(), PatternError> {
        match node {
            Node::Empty => {}
            Node::Char(c) => {
                self.push(Inst::Char(*c))?;
            }
            Node::Any => {
                self.push(Inst::Any)?;
            }
            Node::Class(class) => {
                self.classes.push(class.clone());
                self.push(Inst::Class(self.classes.len() - 1))?;
            }
            Node::Concat(items) => {
                for item in items {
                    self.emit(item)?;
                }
            }
            Node::Alt(branches) => {
                // split L1, L2; L1: a; jmp end; L2: split ...; last: z; end:
                let mut jumps = Vec::new();
                for (i, branch) in branches.iter().enumerate() {
                    if i + 1 < branches.len() {
                        let split = self.push(Inst::Split(0, 0))?;
                        self.emit(branch)?;
                        jumps.push(self.push(Inst::Jump(0))?);
                        let next = self.program.len();
                        self.program[split] = Inst::Split(split + 1, next);
                    } else {
                        self.emit(branch)?;
                    }
                }
                let end = self.program.len();
                for jump in jumps {
                    self.program[jump] = Inst::Jump(end);
                }
            }
            Node::Repeat { node, min, max } => {
                for _ in 0..*min {
                    self.emit(node)?;
                }
                match max {
                    None => {
                        // L: split body, end; body; jmp L; end:
                        let split = self.push(Inst::Split(0, 0))?;
                        self.emit(node)?;
                        self.push(Inst::Jump(split))?;
                        let end = self.program.len();
                        self.program[split] = Inst::Split(split + 1, end);
                    }
                    Some(max) => {
                        // (x(x(x)?)?)? for the optional copies.
                        let mut splits = Vec::new();
                        for _ in *min..*max {
                            splits.push(self.push(Inst::Split(0, 0))?);
                            self.emit(node)?;
                        }
                        let end = self.program.len();
                        for split in splits {
                            self.program[split] = Inst::Split(split + 1, end);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The node as JavaScript `RegExp` source (for the `u` flag), construct by
/// construct, so that both engines read the same language.
fn js_source(node: &Node) -> String {
    match node {
        Node::Empty => String::new(),
        Node::Char(c) => js_char(*c, false),
        Node::Any => "[^\\n]".to_owned(),
        Node::Class(class) => {
            let mut out = String::from(if class.negated { "[^" } else { "[" });
            for (low, high) in &class.ranges {
                out.push_str(&js_char(*low, true));
                if high != low {
                    out.push('-');
                    out.push_str(&js_char(*high, true));
                }
            }
            if class.ranges.is_empty() {
                // Never reached by the parser; an empty class matches nothing.
                out.push_str("\\u{0}-\\u{10FFFF}");
                return crate::text::msg!["[^", &out[1..], "]"];
            }
            out.push(']');
            out
        }
        Node::Concat(items) => items.iter().map(js_source).collect(),
        Node::Alt(branches) => {
            let parts: Vec<String> = branches.iter().map(js_source).collect();
            crate::text::msg!["(?:", parts.join("|"), ")"]
        }
        Node::Repeat { node, min, max } => {
            let inner = crate::text::msg!["(?:", js_source(node), ")"];
            match (min, max) {
                (0, None) => crate::text::msg![inner, "*"],
                (1, None) => crate::text::msg![inner, "+"],
                (0, Some(1)) => crate::text::msg![inner, "?"],
                (n, None) => crate::text::msg![inner, "{", n, ",}"],
                (n, Some(m)) if n == m => crate::text::msg![inner, "{", n, "}"],
                (n, Some(m)) => crate::text::msg![inner, "{", n, ",", m, "}"],
            }
        }
    }
}

/// One character, written so that a JavaScript `RegExp` with the `u` flag
/// reads it as itself.
fn js_char(c: char, in_class: bool) -> String {
    let special = if in_class {
        "\\]^-["
    } else {
        "\\^$.|?*+()[]{}/"
    };
    if c.is_ascii_alphanumeric() || c == '_' || c == ' ' {
        c.to_string()
    } else if special.contains(c) || c == '/' {
        crate::text::msg!["\\", c]
    } else if c.is_ascii_graphic() {
        c.to_string()
    } else {
        let mut out = "\\u{".to_owned();
        let code = c as u32;
        let digits = (32 - code.leading_zeros()).div_ceil(4).max(1);
        for i in (0..digits).rev() {
            out.push(char::from(
                b"0123456789abcdef"[((code >> (4 * i)) & 15) as usize],
            ));
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, value: &str) -> bool {
        Pattern::parse(pattern).unwrap().is_match(value)
    }

    #[test]
    fn the_whole_value_must_match() {
        assert!(matches("[a-z0-9-]+", "dev-1"));
        assert!(!matches("[a-z0-9-]+", "dev_1"));
        assert!(!matches("abc", "abcd"));
        assert!(matches("^abc$", "abc"));
        assert!(matches("a|bc", "bc"));
        assert!(!matches("a|bc", "abc"));
        assert!(matches("(ab)*c", "ababc"));
        assert!(matches("x{2,3}", "xxx"));
        assert!(!matches("x{2,3}", "xxxx"));
        assert!(matches("x{2,}", "xxxxx"));
        assert!(matches(r"\d{4}-\d{2}", "2026-11"));
        assert!(matches(r"[^\s]+", "no-spaces"));
        assert!(!matches(r"[^\s]+", "a space"));
        assert!(matches(".", "é"), "a character, not a byte");
        assert!(!matches(".", "\n"));
        assert!(matches("", ""));
        assert!(matches(r"\w\W", "a-"));
    }

    #[test]
    fn constructs_outside_the_subset_are_refused_by_name() {
        for (pattern, named) in [
            ("(?=a)", "(?="),
            ("a*?", "after a quantifier"),
            (r"\b", r"\b"),
            (r"(a)\1", r"\1"),
            (r"\p{L}", r"\p"),
            ("[a", "unclosed '['"),
            ("(a", "unclosed '('"),
            ("a)", "unmatched ')'"),
            ("*a", "nothing to repeat"),
            ("a{1001}", "above 1000"),
            ("a{3,2}", "below its lower"),
            ("[z-a]", "end is before its start"),
            ("a^", "'^' anywhere"),
        ] {
            let err = Pattern::parse(pattern).unwrap_err();
            assert!(err.0.contains(named), "{pattern}: {err}");
        }
    }

    #[test]
    fn huge_expansions_are_refused_and_matching_is_linear() {
        assert!(Pattern::parse("(a{1000}){1000}").is_err());
        let evil = Pattern::parse("(a*)*b").unwrap();
        assert!(!evil.is_match(&"a".repeat(10_000)));
    }

    #[test]
    fn the_javascript_source_names_each_construct_explicitly() {
        assert_eq!(Pattern::parse("a.b").unwrap().js_source(), "^(?:a[^\\n]b)$");
        assert_eq!(
            Pattern::parse(r"\s").unwrap().js_source(),
            "^(?:[\\u{9}\\u{a}\\u{b}\\u{c}\\u{d} ])$"
        );
        assert_eq!(
            Pattern::parse("(ab|c){2,}").unwrap().js_source(),
            "^(?:(?:(?:ab|c)){2,})$"
        );
    }

    const TOKENS: &[&str] = &[
        "a",
        "b",
        "c",
        "é",
        "😀",
        ".",
        "(",
        ")",
        "|",
        "*",
        "+",
        "?",
        "{1,2}",
        "{2}",
        "\\d",
        "\\s",
        "\\W",
        "[a-c]",
        "[^a]",
        "[0-9é-😀]",
        "-",
        "\\-",
    ];

    proptest::proptest! {
        /// The automaton generated validators run answers as the matcher does.
        #[test]
        fn the_dfa_matches_what_the_nfa_matches(
            tokens in proptest::collection::vec(0..TOKENS.len(), 0..10),
            values in proptest::collection::vec("[abc09 é😀\\-\n]{0,8}", 1..8),
        ) {
            let pattern: String = tokens.iter().map(|t| TOKENS[*t]).collect();
            if let Ok(compiled) = Pattern::parse(&pattern) {
                if let Some(dfa) = compiled.dfa(512) {
                    for value in &values {
                        proptest::prop_assert_eq!(dfa.is_match(value), compiled.is_match(value), "{} on {:?}", pattern, value);
                    }
                }
            }
        }
    }

    #[test]
    fn evil_patterns_become_small_automata_or_none() {
        let evil = Pattern::parse("(a*)*b").unwrap().dfa(512).unwrap();
        assert!(!evil.is_match(&"a".repeat(10_000)));
        assert!(evil.is_match("aab"));
        // 2^n states for "an a n characters from the end".
        assert!(Pattern::parse("[ab]*a[ab]{12}").unwrap().dfa(512).is_none());
    }
}
