//! Traefik router rule parser, Traefik v2 and v3 grammar, verified against traefik/traefik `pkg/rules/parser.go`.
//!
//! Also checked there, at v3.7 (master fd5a576d) and v2.11.53: `pkg/muxer/http/{parser,mux,matcher,matcher_v2}.go`
//! and `pkg/muxer/tcp/matcher{,_v2}.go`. Traefik hands the rule to vulcand/predicate (`parse.go`, v1.3.0), which
//! hands it to Go's `go/parser.ParseExpr` and walks the Go syntax tree.
//!
//! What that makes the grammar, and what this parser therefore accepts:
//!
//! - A rule is a Go expression: matcher calls joined by `&&` and `||`, negated with `!`, grouped
//!   with parentheses. `!` binds tightest, then `&&`, then `||`; both binary operators are left
//!   associative, so `A || B && C` is `A || (B && C)` (Traefik's own tests rely on this).
//! - Arguments are Go string literals: raw strings in backticks (no escapes; carriage returns are
//!   dropped) or double-quoted strings with Go's escapes. Single quotes are Go character literals,
//!   which Traefik rejects. A call may end in a trailing comma, as any Go call may.
//! - Between tokens: spaces, tabs, line breaks and Go comments. A line break right after a matcher
//!   name, a string or `)` makes Go insert a `;`, after which `ParseExpr` accepts only the end.
//! - Matcher names are those Traefik registers (the union of v3's and v2's HTTP and TCP sets, since
//!   zonekeeper reads both API groups), each in exactly four spellings: as Traefik writes it, all
//!   lower case, all upper case, and title case (`Hostregexp`). Other names are an error, as they
//!   are to Traefik. Every matcher needs at least one argument and no argument may be empty (Traefik's
//!   `rules.CheckRule`); v2 takes several (``Host(`a`, `b`)``), v3 one, and both are accepted here.
//!
//! Rules are untrusted input, so nesting of `(` and `!` is capped at [`MAX_NESTING`] and the depth of
//! the resulting tree at [`MAX_DEPTH`]: everything that walks a [`Rule`] recurses.

use std::fmt::{self, Write as _};

use winnow::combinator::{alt, opt, preceded, repeat, terminated};
use winnow::error::{ErrMode, ModalResult, ParserError};
use winnow::prelude::*;
use winnow::stream::{LocatingSlice, Location, Stream};
use winnow::token::{any, take_till, take_until, take_while};

/// How deeply `(` and `!` may nest in a rule; deeper rules are rejected rather than risking the stack.
pub const MAX_NESTING: usize = 64;

/// How deep the parsed tree may be (a matcher counts 1, each operator above it 1 more): bounds the
/// recursion of [`fmt::Display`], [`hosts`] and drop on rules like 10,000 `||`-joined matchers.
pub const MAX_DEPTH: usize = 512;

/// Every matcher Traefik registers, as it spells them: v3 HTTP (`pkg/muxer/http/matcher.go`), the
/// v2 additions (`matcher_v2.go`: `HostHeader`, `Headers`, `HeadersRegexp`) and TCP (`pkg/muxer/tcp`).
const MATCHERS: [&str; 17] = [
    "ALPN",
    "ClientIP",
    "Header",
    "HeaderRegexp",
    "Headers",
    "HeadersRegexp",
    "Host",
    "HostHeader",
    "HostRegexp",
    "HostSNI",
    "HostSNIRegexp",
    "Method",
    "Path",
    "PathPrefix",
    "PathRegexp",
    "Query",
    "QueryRegexp",
];

/// Matchers whose arguments are host names (v2's `HostHeader` is an alias of `Host`).
const HOST_MATCHERS: [&str; 2] = ["Host", "HostHeader"];

/// Matchers that select hosts by a pattern or by TLS SNI: not names we can put in a zone.
const SKIPPED_MATCHERS: [&str; 3] = ["HostRegexp", "HostSNI", "HostSNIRegexp"];

/// A parsed Traefik rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// A matcher call such as ``Host(`a.example.com`)``; `name` is Traefik's canonical spelling
    /// (`host(...)` parses as `Host`), `args` the decoded string arguments (at least one, none empty).
    Matcher { name: String, args: Vec<String> },
    /// `left && right`.
    And(Box<Rule>, Box<Rule>),
    /// `left || right`.
    Or(Box<Rule>, Box<Rule>),
    /// `!rule`.
    Not(Box<Rule>),
}

/// Why a rule does not parse: `offset` is the byte offset in the rule where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: {message}")]
pub struct RuleError {
    /// Byte offset into the rule text.
    pub offset: usize,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

/// The host names a rule routes, as [`hosts`] finds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts {
    /// Arguments of `Host`/`HostHeader` in non-negated positions, lower-cased, first-seen order.
    pub hosts: Vec<String>,
    /// Host-selecting matchers that name no host (``HostRegexp(`{sub:.+}.example.com`)``, `HostSNI`,
    /// `HostSNIRegexp`), in rule syntax, for telling the user what was left out.
    pub skipped: Vec<String>,
}

/// Parses a Traefik rule (v2 or v3 syntax) into a [`Rule`].
pub fn parse(rule: &str) -> Result<Rule, RuleError> {
    document.parse(LocatingSlice::new(rule)).map_err(|error| {
        let Failure { offset, message } = error.into_inner();
        RuleError { offset, message }
    })
}

/// Collects the host names `rule` routes. A matcher under an odd number of `!` is negated (Traefik
/// pushes `!` down to the matchers the same way) and contributes nothing; non-host matchers are ignored.
pub fn hosts(rule: &Rule) -> Hosts {
    let mut found = Hosts::default();
    found.collect(rule, false);
    found
}

impl Hosts {
    fn collect(&mut self, rule: &Rule, negated: bool) {
        match rule {
            Rule::And(left, right) | Rule::Or(left, right) => {
                self.collect(left, negated);
                self.collect(right, negated);
            }
            Rule::Not(inner) => self.collect(inner, !negated),
            Rule::Matcher { .. } if negated => {}
            Rule::Matcher { name, args } if HOST_MATCHERS.contains(&name.as_str()) => {
                args.iter().for_each(|arg| push_new(&mut self.hosts, arg.to_lowercase()));
            }
            Rule::Matcher { name, .. } if SKIPPED_MATCHERS.contains(&name.as_str()) => {
                push_new(&mut self.skipped, rule.to_string());
            }
            Rule::Matcher { .. } => {}
        }
    }
}

fn push_new(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Binding strength, for printing only the parentheses the tree needs.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Precedence {
    Or,
    And,
    Unary,
}

impl Rule {
    fn precedence(&self) -> Precedence {
        match self {
            Rule::Or(..) => Precedence::Or,
            Rule::And(..) => Precedence::And,
            Rule::Not(_) | Rule::Matcher { .. } => Precedence::Unary,
        }
    }

    /// Writes `self`, parenthesised if it binds looser than its position needs. The right operand
    /// of a binary operator needs a tighter binding than the operator itself, because the parser
    /// groups `a || b || c` to the left: `a || (b || c)` is a different tree.
    fn write_at(&self, f: &mut fmt::Formatter<'_>, needed: Precedence) -> fmt::Result {
        if self.precedence() < needed {
            f.write_char('(')?;
            self.write_at(f, Precedence::Or)?;
            return f.write_char(')');
        }
        match self {
            Rule::Or(left, right) => write_binary(f, left, " || ", right, Precedence::Or, Precedence::And),
            Rule::And(left, right) => write_binary(f, left, " && ", right, Precedence::And, Precedence::Unary),
            Rule::Not(inner) => {
                f.write_char('!')?;
                inner.write_at(f, Precedence::Unary)
            }
            Rule::Matcher { name, args } => write_matcher(f, name, args),
        }
    }
}

fn write_binary(
    f: &mut fmt::Formatter<'_>,
    left: &Rule,
    operator: &str,
    right: &Rule,
    left_needs: Precedence,
    right_needs: Precedence,
) -> fmt::Result {
    left.write_at(f, left_needs)?;
    f.write_str(operator)?;
    right.write_at(f, right_needs)
}

fn write_matcher(f: &mut fmt::Formatter<'_>, name: &str, args: &[String]) -> fmt::Result {
    write!(f, "{name}(")?;
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_string(f, arg)?;
    }
    f.write_char(')')
}

/// Backticks where they hold the value verbatim; a double-quoted Go string where they cannot (a
/// backtick inside, or characters Go drops or refuses in raw strings: `\r`, NUL, byte order mark).
fn write_string(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    if !value.contains(['`', '\r', '\0', '\u{feff}']) {
        return write!(f, "`{value}`");
    }
    f.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() || c == '\u{feff}' => write!(f, "\\u{:04x}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// Prints the canonical form: arguments in backticks (double quotes where a value needs escapes),
/// `, ` between them, ` && `/` || ` between operands, and parentheses only where the tree needs
/// them. A tree from [`parse`] prints to text that parses back to the same tree.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_at(f, Precedence::Or)
    }
}

type Input<'i> = LocatingSlice<&'i str>;
type PResult<O> = ModalResult<O, Failure>;
/// A parsed subtree and its depth.
type Node = (Rule, usize);

/// The parser's error: every failure this module reports is a cut with its own message; the
/// message made in `from_input` only describes where a winnow primitive gave up.
#[derive(Debug)]
struct Failure {
    offset: usize,
    message: String,
}

impl ParserError<Input<'_>> for Failure {
    type Inner = Self;

    fn from_input(input: &Input<'_>) -> Self {
        Failure { offset: input.current_token_start(), message: format!("unexpected {}", found(input)) }
    }

    fn into_inner(self) -> Result<Self, Self> {
        Ok(self)
    }
}

fn fail<O>(offset: usize, message: impl Into<String>) -> PResult<O> {
    Err(ErrMode::Cut(Failure { offset, message: message.into() }))
}

fn offset(input: &Input<'_>) -> usize {
    input.current_token_start()
}

fn rest<'i>(input: &Input<'i>) -> &'i str {
    input.peek_finish()
}

/// Names the token at the start of `input`, for error messages.
fn found(input: &Input<'_>) -> String {
    let rest = rest(input);
    let word = rest.find(|c| !is_word_char(c)).unwrap_or(rest.len());
    let token = match rest.chars().next() {
        None => return "the end of the rule".to_owned(),
        Some('`') => return "a backtick".to_owned(),
        Some(_) if word > 0 => &rest[..word],
        Some(c) => &rest[..c.len_utf8()],
    };
    format!("`{token}`")
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn document(input: &mut Input<'_>) -> PResult<Rule> {
    opt('\u{feff}').parse_next(input)?; // Go skips a byte order mark at the very start
    trivia.parse_next(input)?;
    if rest(input).is_empty() {
        return fail(offset(input), "the rule is empty; Traefik needs at least one matcher, e.g. Host(`example.com`)");
    }
    let (rule, _) = or_expr(input, 0)?;
    match rest(input).chars().next() {
        None => Ok(rule),
        Some(')') => fail(offset(input), "unbalanced `)`: no `(` is open here"),
        Some(_) => unexpected_after_operand(input, "`&&`, `||` or the end of the rule"),
    }
}

fn or_expr(input: &mut Input<'_>, nesting: usize) -> PResult<Node> {
    chain(input, "||", Rule::Or, |input| and_expr(input, nesting))
}

fn and_expr(input: &mut Input<'_>, nesting: usize) -> PResult<Node> {
    chain(input, "&&", Rule::And, |input| unary(input, nesting))
}

/// Operands joined by `operator`, grouped to the left. A loop rather than recursion, so a long
/// chain costs no stack while parsing; its depth is still checked, for those who walk the tree.
fn chain(
    input: &mut Input<'_>,
    operator: &'static str,
    join: fn(Box<Rule>, Box<Rule>) -> Rule,
    mut operand: impl FnMut(&mut Input<'_>) -> PResult<Node>,
) -> PResult<Node> {
    let mut left = operand(input)?;
    loop {
        let at = offset(input);
        if opt(symbol(operator)).parse_next(input)?.is_none() {
            return Ok(left);
        }
        let right = operand(input)?;
        let depth = left.1.max(right.1) + 1;
        left = node(at, join(Box::new(left.0), Box::new(right.0)), depth)?;
    }
}

fn node(at: usize, rule: Rule, depth: usize) -> PResult<Node> {
    if depth > MAX_DEPTH {
        return fail(at, format!("the rule nests operators more than {MAX_DEPTH} deep; split it into several routers"));
    }
    Ok((rule, depth))
}

/// One level deeper into `(` or `!`, refused past [`MAX_NESTING`] before the parser recurses.
fn deeper(at: usize, nesting: usize) -> PResult<usize> {
    if nesting >= MAX_NESTING {
        return fail(at, format!("`(` and `!` nest more than {MAX_NESTING} levels deep here"));
    }
    Ok(nesting + 1)
}

fn unary(input: &mut Input<'_>, nesting: usize) -> PResult<Node> {
    let at = offset(input);
    if opt(symbol("!")).parse_next(input)?.is_none() {
        return primary(input, nesting);
    }
    let (inner, depth) = unary(input, deeper(at, nesting)?)?;
    node(at, Rule::Not(Box::new(inner)), depth + 1)
}

fn primary(input: &mut Input<'_>, nesting: usize) -> PResult<Node> {
    let at = offset(input);
    if opt(symbol("(")).parse_next(input)?.is_none() {
        return Ok((matcher(input)?, 1));
    }
    let inner = or_expr(input, deeper(at, nesting)?)?;
    if opt(')').parse_next(input)?.is_none() {
        return unexpected_after_operand(input, &format!("`)` to close the `(` at byte {at}, or `&&`, `||`"));
    }
    line_end(input)?;
    Ok(inner)
}

/// Something other than an operator follows a complete operand.
fn unexpected_after_operand<O>(input: &Input<'_>, expected: &str) -> PResult<O> {
    let rest = rest(input);
    let hint = match rest.chars().next() {
        Some('&') => " (and is `&&`)",
        Some('|') => " (or is `||`)",
        _ if rest.starts_with(is_word_char) => " (matchers are joined with `&&` or `||`)",
        _ => "",
    };
    fail(offset(input), format!("expected {expected}, found {}{hint}", found(input)))
}

fn matcher(input: &mut Input<'_>) -> PResult<Rule> {
    let at = offset(input);
    let Some(word) = opt(take_while(1.., is_word_char)).parse_next(input)? else {
        return expected_operand(input);
    };
    let Some(name) = canonical_name(word) else {
        return fail(at, unknown_matcher(word));
    };
    line_end(input)?;
    if opt(symbol("(")).parse_next(input)?.is_none() {
        let message = format!("expected `(` after `{name}`, found {}; e.g. {name}(`value`)", found(input));
        return fail(offset(input), message);
    }
    let args = arguments(input, name)?;
    Ok(Rule::Matcher { name: name.to_owned(), args })
}

fn expected_operand<O>(input: &Input<'_>) -> PResult<O> {
    let message = match rest(input).chars().next() {
        Some('`' | '"') => "a string must be the argument of a matcher, e.g. Host(`example.com`)".to_owned(),
        Some('\'') => SINGLE_QUOTE.to_owned(),
        _ => format!("expected a matcher such as Host(`example.com`), `!` or `(`, found {}", found(input)),
    };
    fail(offset(input), message)
}

const SINGLE_QUOTE: &str = "single quotes do not make a string in a Traefik rule (Go reads 'x' as a character); \
                            use backticks or double quotes";

/// Traefik registers each matcher under four spellings (`rules.NewParser`): as written, lower case,
/// upper case and title case (`Hostregexp`); any other casing is an unknown function to it.
fn canonical_name(word: &str) -> Option<&'static str> {
    let has_upper = |s: &str| s.bytes().any(|b| b.is_ascii_uppercase());
    let has_lower = |s: &str| s.bytes().any(|b| b.is_ascii_lowercase());
    MATCHERS.into_iter().find(|name| {
        word.eq_ignore_ascii_case(name)
            && (word == *name
                || !has_upper(word)
                || !has_lower(word)
                || (word.starts_with(|c: char| c.is_ascii_uppercase()) && !has_upper(&word[1..])))
    })
}

fn unknown_matcher(word: &str) -> String {
    match MATCHERS.into_iter().find(|name| word.eq_ignore_ascii_case(name)) {
        Some(name) => {
            let lower = name.to_ascii_lowercase();
            let title = format!("{}{}", &name[..1], &lower[1..]);
            let upper = name.to_ascii_uppercase();
            format!("unknown matcher `{word}`: Traefik accepts it only as `{name}`, `{lower}`, `{upper}` or `{title}`")
        }
        None => format!("unknown matcher `{word}`; Traefik's matchers are {}", MATCHERS.join(", ")),
    }
}

/// The arguments after a matcher's `(`, through its `)`.
fn arguments(input: &mut Input<'_>, name: &str) -> PResult<Vec<String>> {
    let mut args = Vec::new();
    loop {
        let at = offset(input);
        if opt(')').parse_next(input)?.is_some() {
            if args.is_empty() {
                return fail(at, format!("`{name}()` has no argument; Traefik needs one, e.g. {name}(`value`)"));
            }
            line_end(input)?;
            return Ok(args);
        }
        args.push(argument(input, name)?);
        // A `,` may also end the list, as in any Go call: `Host(`a`,)`.
        if opt(symbol(",")).parse_next(input)?.is_none() && !rest(input).starts_with(')') {
            let message = format!("expected `,` or `)` after an argument of `{name}`, found {}", found(input));
            return fail(offset(input), message);
        }
    }
}

fn argument(input: &mut Input<'_>, name: &str) -> PResult<String> {
    let at = offset(input);
    let value = match rest(input).chars().next() {
        Some('`') => raw_string(input)?,
        Some('"') => quoted_string(input)?,
        Some('\'') => return fail(at, SINGLE_QUOTE),
        _ => {
            let message =
                format!("expected an argument of `{name}` in backticks or double quotes, found {}", found(input));
            return fail(at, message);
        }
    };
    if value.is_empty() {
        return fail(at, format!("empty argument to `{name}`: Traefik rejects empty values"));
    }
    line_end(input)?;
    Ok(value)
}

/// A Go raw string: everything up to the next backtick, verbatim but for carriage returns, which
/// Go drops. There is no escape, so a raw string cannot hold a backtick.
fn raw_string(input: &mut Input<'_>) -> PResult<String> {
    let at = offset(input);
    let body = preceded('`', take_till(0.., '`')).parse_next(input)?;
    if opt('`').parse_next(input)?.is_none() {
        return fail(at, "unterminated backtick string: add the closing backtick");
    }
    check_chars(at + 1, body)?;
    Ok(body.replace('\r', ""))
}

/// A Go interpreted string. Escapes may produce arbitrary bytes (`\xff`); a value that is not
/// UTF-8 is refused, since no host name or path we could use is spelled that way.
fn quoted_string(input: &mut Input<'_>) -> PResult<String> {
    let at = offset(input);
    '"'.parse_next(input)?;
    let mut bytes = Vec::new();
    loop {
        let piece_at = offset(input);
        let piece = take_till(0.., ['"', '\\', '\n']).parse_next(input)?;
        check_chars(piece_at, piece)?;
        bytes.extend_from_slice(piece.as_bytes());
        match opt(any).parse_next(input)? {
            Some('"') => break,
            Some('\\') if !rest(input).is_empty() => escape(input, piece_at + piece.len(), &mut bytes)?,
            Some('\n') => {
                return fail(at, "a double-quoted string cannot span lines; close it on this line or use backticks");
            }
            // The end of the rule, or a backslash right before it.
            _ => return fail(at, "unterminated double-quoted string: add the closing `\"`"),
        }
    }
    String::from_utf8(bytes).or_else(|_| fail(at, "the escapes in this string do not form valid UTF-8"))
}

/// One escape after its backslash (at byte `at`; the caller saw more input), as Go defines them.
fn escape(input: &mut Input<'_>, at: usize, out: &mut Vec<u8>) -> PResult<()> {
    let kind = any.parse_next(input)?;
    let simple = match kind {
        'a' => 0x07,
        'b' => 0x08,
        'f' => 0x0c,
        'n' => b'\n',
        'r' => b'\r',
        't' => b'\t',
        'v' => 0x0b,
        '\\' => b'\\',
        '"' => b'"',
        'x' => return push_byte(out, digits(input, 2, 16)?, at, "`\\x` needs exactly two hex digits"),
        '0'..='7' => {
            let value = digits(input, 2, 8)?.map(|low| (u32::from(kind) - u32::from('0')) * 64 + low);
            return push_byte(out, value, at, "an octal escape needs exactly three digits, at most \\377");
        }
        'u' => return push_char(out, digits(input, 4, 16)?, at, "`\\u` needs exactly four hex digits"),
        'U' => return push_char(out, digits(input, 8, 16)?, at, "`\\U` needs exactly eight hex digits"),
        other => {
            let message = format!(
                "invalid escape `\\{}` in a double-quoted string; \
                 Go allows \\a \\b \\f \\n \\r \\t \\v \\\\ \\\" \\xHH \\OOO \\uHHHH \\UHHHHHHHH",
                other.escape_debug()
            );
            return fail(at, message);
        }
    };
    out.push(simple);
    Ok(())
}

/// Exactly `count` digits in `radix`, or `None`.
fn digits(input: &mut Input<'_>, count: usize, radix: u32) -> PResult<Option<u32>> {
    let text = opt(take_while(count, move |c: char| c.is_digit(radix))).parse_next(input)?;
    Ok(text.and_then(|text| u32::from_str_radix(text, radix).ok()))
}

fn push_byte(out: &mut Vec<u8>, value: Option<u32>, at: usize, message: &str) -> PResult<()> {
    let Some(byte) = value.and_then(|value| u8::try_from(value).ok()) else {
        return fail(at, message);
    };
    out.push(byte);
    Ok(())
}

fn push_char(out: &mut Vec<u8>, value: Option<u32>, at: usize, message: &str) -> PResult<()> {
    let Some(value) = value else {
        return fail(at, message);
    };
    let Some(c) = char::from_u32(value) else {
        return fail(at, format!("escape U+{value:X} is not a Unicode scalar value"));
    };
    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    Ok(())
}

/// Go's scanner refuses NUL and byte order marks anywhere but at the very start of its input.
fn check_chars(start: usize, text: &str) -> PResult<()> {
    match text.char_indices().find(|&(_, c)| c == '\0' || c == '\u{feff}') {
        Some((i, '\0')) => {
            fail(start + i, "a NUL character is not allowed in a rule; write \\x00 in a double-quoted string")
        }
        Some((i, _)) => {
            fail(start + i, "a byte order mark is not allowed here; write \\uFEFF in a double-quoted string")
        }
        None => Ok(()),
    }
}

/// A punctuation token and the trivia after it; none of these end a Go line.
fn symbol<'i>(token: &'static str) -> impl Parser<Input<'i>, (), ErrMode<Failure>> {
    terminated(token, trivia).void()
}

/// Trivia after a token that can end a Go line (a name, a string, `)`): at a line break Go inserts
/// a `;`, and `ParseExpr` then accepts nothing but the end of the rule.
fn line_end(input: &mut Input<'_>) -> PResult<()> {
    if trivia.parse_next(input)? && !rest(input).is_empty() {
        let message = format!(
            "line break before {}: Traefik (Go) ends the rule at a line break after `)`, a name or a string; \
             break the line after `&&`, `||`, `(` or `,` instead",
            found(input)
        );
        return fail(offset(input), message);
    }
    Ok(())
}

/// Whitespace and comments, which Go skips between tokens; reports whether they broke the line.
fn trivia(input: &mut Input<'_>) -> PResult<bool> {
    repeat(
        0..,
        alt((
            take_while(1.., [' ', '\t', '\r', '\n']).map(|blank: &str| blank.contains('\n')),
            // A line comment runs to a line break or the end of the rule; either ends the line.
            preceded("//", take_till(0.., '\n')).value(true),
            block_comment,
        )),
    )
    .fold(|| false, |broke, breaks| broke || breaks)
    .parse_next(input)
}

fn block_comment(input: &mut Input<'_>) -> PResult<bool> {
    let at = offset(input);
    "/*".parse_next(input)?;
    match opt(terminated(take_until(0.., "*/"), "*/")).parse_next(input)? {
        Some(body) => Ok(body.contains('\n')),
        None => fail(at, "unterminated comment: close `/*` with `*/`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(name: &str, args: &[&str]) -> Rule {
        Rule::Matcher { name: name.to_owned(), args: args.iter().map(|a| (*a).to_owned()).collect() }
    }
    fn and(l: Rule, r: Rule) -> Rule {
        Rule::And(Box::new(l), Box::new(r))
    }
    fn or(l: Rule, r: Rule) -> Rule {
        Rule::Or(Box::new(l), Box::new(r))
    }
    fn not(r: Rule) -> Rule {
        Rule::Not(Box::new(r))
    }
    fn host(h: &str) -> Rule {
        m("Host", &[h])
    }
    fn ok(text: &str) -> Rule {
        match parse(text) {
            Ok(rule) => rule,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }
    fn err(text: &str) -> RuleError {
        match parse(text) {
            Ok(rule) => panic!("{text:?} should not parse, got {rule:?}"),
            Err(e) => e,
        }
    }
    /// Asserts the error's offset and that its message contains `needle`.
    fn assert_err(text: &str, offset: usize, needle: &str) {
        let e = err(text);
        assert_eq!(e.offset, offset, "offset for {text:?}: {e}");
        assert!(e.message.contains(needle), "message for {text:?} lacks {needle:?}: {e}");
    }
    fn host_list(text: &str) -> Vec<String> {
        hosts(&ok(text)).hosts
    }

    #[test]
    fn single_host() {
        assert_eq!(ok("Host(`a.example.com`)"), host("a.example.com"));
        assert_eq!(host_list("Host(`a.example.com`)"), ["a.example.com"]);
    }

    #[test]
    fn v2_multiple_arguments() {
        let rule = ok("Host(`a.example.com`, `b.example.com`)");
        assert_eq!(rule, m("Host", &["a.example.com", "b.example.com"]));
        assert_eq!(hosts(&rule).hosts, ["a.example.com", "b.example.com"]);
        assert_eq!(rule.to_string(), "Host(`a.example.com`, `b.example.com`)");
    }

    #[test]
    fn or_of_hosts() {
        assert_eq!(ok("Host(`a`) || Host(`b`)"), or(host("a"), host("b")));
        assert_eq!(host_list("Host(`a`) || Host(`b`)"), ["a", "b"]);
    }

    #[test]
    fn and_with_path_prefix() {
        let rule = ok("Host(`a`) && PathPrefix(`/api`)");
        assert_eq!(rule, and(host("a"), m("PathPrefix", &["/api"])));
        assert_eq!(hosts(&rule), Hosts { hosts: vec!["a".into()], skipped: vec![] });
    }

    #[test]
    fn negated_host_contributes_nothing() {
        assert_eq!(ok("!Host(`a`)"), not(host("a")));
        assert!(host_list("!Host(`a`)").is_empty());
        assert_eq!(host_list("!(Host(`a`) || Host(`b`)) && Host(`c`)"), ["c"]);
        assert!(hosts(&ok("!HostRegexp(`.+`)")).skipped.is_empty());
        // Two negations cancel, as Traefik's own `!` push-down makes them.
        assert_eq!(host_list("!!Host(`a`)"), ["a"]);
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // Traefik's matcher_v2_test.go: `Host("tchouk") || Host("pouet") && Path("/powpow")`
        // routes tchouk on any path, i.e. A || (B && C).
        let (a, b, c) = (host("a"), host("b"), m("Path", &["/c"]));
        assert_eq!(ok("Host(`a`) || Host(`b`) && Path(`/c`)"), or(a.clone(), and(b.clone(), c.clone())));
        assert_eq!(ok("Host(`a`) && Host(`b`) || Path(`/c`)"), or(and(a.clone(), b.clone()), c.clone()));
        assert_eq!(ok("(Host(`a`) || Host(`b`)) && Path(`/c`)"), and(or(a.clone(), b.clone()), c.clone()));
        assert_eq!(ok("!Host(`a`) && Host(`b`)"), and(not(a.clone()), b.clone()));
        assert_eq!(ok("!(Host(`a`) && Host(`b`))"), not(and(a, b)));
    }

    #[test]
    fn operators_group_to_the_left() {
        let (a, b, c) = (host("a"), host("b"), host("c"));
        assert_eq!(ok("Host(`a`) || Host(`b`) || Host(`c`)"), or(or(a.clone(), b.clone()), c.clone()));
        assert_eq!(ok("Host(`a`) && Host(`b`) && Host(`c`)"), and(and(a.clone(), b.clone()), c.clone()));
        assert_eq!(ok("Host(`a`) || (Host(`b`) || Host(`c`))"), or(a, or(b, c)));
        assert_eq!(ok("((Host(`a`)))"), host("a"));
    }

    #[test]
    fn display_prints_only_needed_parentheses() {
        let (a, b, c) = (host("a"), host("b"), host("c"));
        assert_eq!(or(a.clone(), or(b.clone(), c.clone())).to_string(), "Host(`a`) || (Host(`b`) || Host(`c`))");
        assert_eq!(or(or(a.clone(), b.clone()), c.clone()).to_string(), "Host(`a`) || Host(`b`) || Host(`c`)");
        assert_eq!(and(or(a.clone(), b.clone()), c.clone()).to_string(), "(Host(`a`) || Host(`b`)) && Host(`c`)");
        assert_eq!(or(a.clone(), and(b.clone(), c)).to_string(), "Host(`a`) || Host(`b`) && Host(`c`)");
        assert_eq!(not(and(a.clone(), b)).to_string(), "!(Host(`a`) && Host(`b`))");
        assert_eq!(not(not(a)).to_string(), "!!Host(`a`)");
    }

    #[test]
    fn display_double_quotes_values_backticks_cannot_hold() {
        let rule = m("Path", &["/a`b", "c\rd\u{0}"]);
        assert_eq!(rule.to_string(), r#"Path("/a`b", "c\rd\u0000")"#);
        assert_eq!(ok(&rule.to_string()), rule);
    }

    #[test]
    fn double_quoted_arguments_and_go_escapes() {
        assert_eq!(ok(r#"Host("a.example.com")"#), host("a.example.com"));
        let rule = ok(r#"Path("/\t\"\\\u00e9\U0001F600\x41\101\a\b\f\v\n\r")"#);
        assert_eq!(rule, m("Path", &["/\t\"\\é😀AA\u{7}\u{8}\u{c}\u{b}\n\r"]));
        // Bytes from escapes may together form UTF-8.
        assert_eq!(ok(r#"Path("\xc3\xa9")"#), m("Path", &["é"]));
        // Raw strings take backslashes verbatim, may span lines and lose carriage returns.
        assert_eq!(ok("Path(`\\n\r\nx`)"), m("Path", &["\\n\nx"]));
    }

    #[test]
    fn bad_escapes_are_errors() {
        assert_err(r#"Path("a\qb")"#, 7, "invalid escape");
        assert_err(r#"Path("\'")"#, 6, "invalid escape");
        assert_err(r#"Path("\x4")"#, 6, "two hex digits");
        assert_err(r#"Path("\400")"#, 6, "octal");
        assert_err(r#"Path("\12")"#, 6, "octal");
        assert_err(r#"Path("\ud800")"#, 6, "not a Unicode scalar");
        assert_err(r#"Path("\U00110000")"#, 6, "not a Unicode scalar");
        assert_err(r#"Path("\u12")"#, 6, "four hex digits");
        assert_err(r#"Path("\xff")"#, 5, "UTF-8");
        assert_err("Path(\"a\nb\")", 5, "span lines");
        assert_err("Path(`a\0b`)", 7, "NUL");
        assert_err("Path(\"\u{feff}\")", 6, "byte order mark");
    }

    #[test]
    fn single_quotes_are_rejected() {
        assert_err("Host('a.example.com')", 5, "single quotes");
        assert_err("'Host'", 0, "single quotes");
    }

    #[test]
    fn matcher_names_take_traefiks_four_spellings() {
        for spelling in ["HostRegexp", "hostregexp", "HOSTREGEXP", "Hostregexp"] {
            assert_eq!(ok(&format!("{spelling}(`x`)")), m("HostRegexp", &["x"]), "{spelling}");
        }
        assert_eq!(ok("host(`A.Example.com`) || HOST(`b`)"), or(host("A.Example.com"), host("b")));
        assert_eq!(ok("alpn(`h2`) && Hostsni(`x`)"), and(m("ALPN", &["h2"]), m("HostSNI", &["x"])));
        assert_err("hostRegexp(`x`)", 0, "only as `HostRegexp`, `hostregexp`, `HOSTREGEXP` or `Hostregexp`");
        assert_err("Host(`a`) && Foo(`b`)", 13, "unknown matcher `Foo`");
    }

    #[test]
    fn every_known_matcher_parses() {
        for name in MATCHERS {
            assert_eq!(ok(&format!("{name}(`x`, `y`)")), m(name, &["x", "y"]));
        }
    }

    #[test]
    fn regexp_and_sni_matchers_are_skipped() {
        let found = hosts(&ok(
            "HostRegexp(`{sub:.+}.example.com`) || HostSNI(`*`) || HostSNIRegexp(`^.+$`) || Host(`a`) || hostsni(`*`)",
        ));
        assert_eq!(found.hosts, ["a"]);
        assert_eq!(found.skipped, ["HostRegexp(`{sub:.+}.example.com`)", "HostSNI(`*`)", "HostSNIRegexp(`^.+$`)"]);
    }

    #[test]
    fn hosts_are_lower_cased_deduplicated_and_other_matchers_ignored() {
        let rule = "Host(`B.example.com`) || HostHeader(`a.example.com`, `b.EXAMPLE.com`) && Headers(`X`, `y`) \
                    || Method(`GET`) || ClientIP(`10.0.0.0/8`)";
        assert_eq!(host_list(rule), ["b.example.com", "a.example.com"]);
    }

    #[test]
    fn whitespace_comments_and_trailing_commas() {
        let rule = "\u{feff} \t Host ( `a` , ) &&\n\t!\n( Path(`/`) /* why */ || // note\n Method(`GET`,`PUT`,) )\n";
        assert_eq!(ok(rule), and(host("a"), not(or(m("Path", &["/"]), m("Method", &["GET", "PUT"])))));
        assert_eq!(ok("Host(`a`) // the end"), host("a"));
        assert_eq!(ok("Host(`a`,\n`b`)"), m("Host", &["a", "b"]));
        assert_err("Host(`a`) /* open", 10, "unterminated comment");
    }

    #[test]
    fn line_break_after_name_string_or_paren_ends_the_rule() {
        assert_err("Host(`a`)\n|| Host(`b`)", 10, "line break before `|`");
        assert_err("Host(`a`\n)", 9, "line break");
        assert_err("Host\n(`a`)", 5, "line break");
        assert_err("(Host(`a`) /* \n */ )", 19, "line break");
        assert_err("Host(`a`) // c\n&& Path(`/`)", 15, "line break");
    }

    #[test]
    fn malformed_rules_report_where() {
        assert_err("", 0, "empty");
        assert_err(" \n /* */ ", 9, "empty");
        assert_err("Host(`a.example.com)", 5, "unterminated backtick");
        assert_err("Host(\"a.example.com)", 5, "unterminated double-quoted");
        assert_err("Host(\"a\\", 5, "unterminated double-quoted");
        assert_err("(Host(`a`)", 10, "`)` to close the `(` at byte 0");
        assert_err("(Host(`a`) Path(`/`))", 11, "`)` to close the `(` at byte 0");
        assert_err("Host(`a`", 8, "expected `,` or `)`");
        assert_err("Host(`a` `b`)", 9, "expected `,` or `)`");
        assert_err("Host(`a`))", 9, "unbalanced `)`");
        assert_err("Host(`a`) foo", 10, "found `foo`");
        assert_err("Host(`a`) and Host(`b`)", 10, "joined with `&&` or `||`");
        assert_err("Host(`a`) & Host(`b`)", 10, "and is `&&`");
        assert_err("Host(`a`) | Host(`b`)", 10, "or is `||`");
        assert_err("Host(`a`) &&", 12, "found the end of the rule");
        assert_err("Host(`a`) || )", 13, "found `)`");
        assert_err("Host(`a`);", 9, "found `;`");
        assert_err("Host(`a`) == Host(`b`)", 10, "found `=`");
        assert_err("Host", 4, "expected `(` after `Host`");
        assert_err("Host()", 5, "`Host()` has no argument");
        assert_err("Host(``)", 5, "empty argument to `Host`");
        assert_err("Host(`a`, ``)", 10, "empty argument");
        assert_err("Host(,)", 5, "in backticks or double quotes, found `,`");
        assert_err("Host(1)", 5, "found `1`");
        assert_err("Host(Path(`a`))", 5, "found `Path`");
        assert_err("`a`", 0, "argument of a matcher");
        assert_err("Host(`a`)(`b`)", 9, "found `(`");
        assert_err("x.Host(`a`)", 0, "unknown matcher `x`");
    }

    #[test]
    fn error_display_names_offset_and_message() {
        assert_eq!(
            err("Host()").to_string(),
            "at byte 5: `Host()` has no argument; Traefik needs one, e.g. Host(`value`)"
        );
    }

    #[test]
    fn deep_nesting_is_rejected_without_overflowing_the_stack() {
        let parens = format!("{}Host(`a`){}", "(".repeat(10_000), ")".repeat(10_000));
        assert_err(&parens, MAX_NESTING, "nest more than 64");
        let nots = format!("{}Host(`a`)", "!".repeat(10_000));
        assert_err(&nots, MAX_NESTING, "nest more than 64");
        let mixed = "!(".repeat(5_000);
        assert_err(&mixed, MAX_NESTING, "nest more than 64");
        let limit = format!("{}Host(`a`){}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(ok(&limit), host("a"));
        assert_eq!(ok(&format!("{}Host(`a`)", "!".repeat(MAX_NESTING))).to_string().len(), MAX_NESTING + 9);
    }

    #[test]
    fn long_operator_chains_are_bounded() {
        let chain = |n: usize| vec!["Host(`a`)"; n].join(" || ");
        let long = chain(10_000);
        let e = err(&long);
        assert!(e.message.contains("more than 512 deep"), "{e}");
        assert_eq!(e.offset, MAX_DEPTH * 13 - 3);
        assert_eq!(host_list(&chain(MAX_DEPTH)), ["a"]);
    }

    /// Names from the known list, arguments from characters that need care: quotes, backslashes,
    /// operators, comment openers, line breaks, carriage returns, NUL, non-ASCII and backticks
    /// (which `Display` must move into a double-quoted string).
    fn arb_rule() -> impl Strategy<Value = Rule> {
        let chars = prop::sample::select(vec![
            'a', 'Z', '0', '.', '-', '*', '{', '}', '(', ')', ',', ' ', '&', '|', '!', '"', '\'', '\\', '/', '`', '\n',
            '\r', '\t', '\0', '\u{feff}', '\u{85}', 'é', '日', '😀',
        ]);
        let arg = prop::collection::vec(chars, 1..8).prop_map(String::from_iter);
        let leaf = (prop::sample::select(MATCHERS.to_vec()), prop::collection::vec(arg, 1..4))
            .prop_map(|(name, args)| Rule::Matcher { name: name.to_owned(), args });
        leaf.prop_recursive(6, 64, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(l, r)| and(l, r)),
                (inner.clone(), inner.clone()).prop_map(|(l, r)| or(l, r)),
                inner.prop_map(not),
            ]
        })
    }

    /// Rule-ish text, mostly (9 to 1 at each choice) what Traefik accepts: matchers in its four
    /// spellings, both quotings with escapes, trailing commas, gaps with comments and line breaks
    /// where Go allows them. Otherwise near misses: unknown names, bad strings, `&`, line breaks
    /// after `)`, parentheses that do not close.
    fn arb_text() -> impl Strategy<Value = String> {
        let pick = |items: &[&'static str]| prop::sample::select(items.to_vec());
        let mostly = move |good: &[&'static str], bad: &[&'static str]| prop_oneof![9 => pick(good), 1 => pick(bad)];
        // After a name, a string or `)`, where a line break ends a Go expression.
        let inline = mostly(&["", " ", "\t", " /* c */ "], &["\n", "// c\n"]);
        let gap = pick(&["", " ", "\t", "\n", " /* c */ ", "/*\n*/", "// c\n"]);
        let name =
            mostly(&["Host", "host", "HOST", "Hostsni", "HostRegexp", "PathPrefix", "Headers"], &["hostRegexp", "Foo"]);
        let arg = mostly(
            &["`a.example.com`", "`B.Example.COM`", "`x\"y`", "`\r\n`", "\"b\\t\\\"c\"", "\"\\x41\\u00e9\"", "\"`\""],
            &["``", "'a'", "\"\\q\"", "`open"],
        );
        let args = prop::collection::vec((arg, inline.clone(), gap.clone()), 1..3);
        let matcher = (name, inline.clone(), gap.clone(), args, mostly(&["", ","], &[",,"])).prop_map(
            |(name, inline, gap, args, trailing)| {
                let args: Vec<String> =
                    args.into_iter().map(|(arg, inline, gap)| format!("{gap}{arg}{inline}")).collect();
                format!("{name}{inline}({gap}{}{trailing})", args.join(","))
            },
        );
        let outer = gap.clone();
        let expr = matcher.prop_recursive(5, 32, 2, move |inner| {
            let binary =
                (inner.clone(), inline.clone(), mostly(&["&&", "||"], &["&", "and"]), gap.clone(), inner.clone());
            let grouped = (gap.clone(), inner.clone(), inline.clone(), mostly(&[")"], &["", "))"]));
            prop_oneof![
                binary.prop_map(|(left, inline, op, gap, right)| format!("{left}{inline}{op}{gap}{right}")),
                grouped.prop_map(|(gap, inner, inline, close)| format!("({gap}{inner}{inline}{close}")),
                (gap.clone(), inner).prop_map(|(gap, inner)| format!("!{gap}{inner}")),
            ]
        });
        (outer.clone(), expr, outer).prop_map(|(before, expr, after)| format!("{before}{expr}{after}"))
    }

    proptest! {
        #[test]
        fn display_parses_back_to_the_same_tree(rule in arb_rule()) {
            prop_assert_eq!(parse(&rule.to_string()), Ok(rule));
        }

        #[test]
        fn accepted_text_round_trips_and_errors_point_into_it(text in arb_text()) {
            match parse(&text) {
                Ok(rule) => prop_assert_eq!(parse(&rule.to_string()), Ok(rule)),
                Err(e) => prop_assert!(e.offset <= text.len() && text.is_char_boundary(e.offset), "{e}"),
            }
        }
    }
}
