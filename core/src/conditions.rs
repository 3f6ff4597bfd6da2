//! VALUE CONDITIONS: AWS IoT commands' `valueConditions` on a parameter
//! (`{"comparisonOperator": "IN_RANGE", "operand": {"numberRange": {"min":
//! "60", "max": "80"}}}`), checked when a command is defined and applied to
//! every value by the same validator as Courier's own constraints, on the
//! server and in the browser. Pure, no I/O.
//!
//! Numeric types (I, L, D, UL) take all ten operators; S takes EQUALS,
//! NOT_EQUALS, IN_SET and NOT_IN_SET; B and BIN take none. Numbers are
//! written as strings, as AWS writes them, and compared exactly between
//! integers (as min and max are). Ranges include their bounds.

use crate::error::{ValidationCode, ValidationErrors};
use crate::json::{Json, Number as JsonNumber};
use crate::text::{json_kind, msg, quote};
use crate::value::{Number, TypedValue, ValueType};
use serde::{Deserialize, Serialize};

/// The most values a set operand may hold (AWS's limit).
pub const MAX_SET: usize = 10;

/// One condition, in AWS's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueCondition {
    pub comparison_operator: String,
    pub operand: Operand,
}

/// A condition's operand: one of its fields, by operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operand {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strings: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_range: Option<NumberRange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberRange {
    pub min: String,
    pub max: String,
}

/// A condition checked and ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub enum Compiled {
    Compare(Comparison, JsonNumber),
    NumberIn {
        negated: bool,
        set: Vec<JsonNumber>,
    },
    Range {
        negated: bool,
        min: JsonNumber,
        max: JsonNumber,
    },
    StringIn {
        negated: bool,
        set: Vec<String>,
    },
}

/// A single-number comparison; its name is AWS's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Equals,
    NotEquals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

impl Comparison {
    /// The JavaScript operator under which a value FAILS the condition
    /// (the generated validator's test).
    pub const fn failing_js_operator(self) -> &'static str {
        match self {
            Self::Equals => "!==",
            Self::NotEquals => "===",
            Self::LessThan => ">=",
            Self::LessThanEquals => ">",
            Self::GreaterThan => "<=",
            Self::GreaterThanEquals => "<",
        }
    }

    const fn words(self) -> &'static str {
        match self {
            Self::Equals => " must equal ",
            Self::NotEquals => " must not equal ",
            Self::LessThan => " must be less than ",
            Self::LessThanEquals => " must be at most ",
            Self::GreaterThan => " must be greater than ",
            Self::GreaterThanEquals => " must be at least ",
        }
    }
}

impl ValueCondition {
    /// One condition from its JSON form at `path`, every problem of shape
    /// reported.
    pub fn from_json(json: &Json, path: &str, errors: &mut ValidationErrors) -> Option<Self> {
        let wrong = |errors: &mut ValidationErrors, at: String, what: &str, got: &Json| {
            errors.add(
                at,
                ValidationCode::WrongType,
                msg!["expected ", what, ", got ", json_kind(got)],
            );
        };
        let Json::Object(map) = json else {
            wrong(errors, path.to_owned(), "an object", json);
            return None;
        };
        let before = errors.len();
        for key in map.keys() {
            if key != "comparisonOperator" && key != "operand" {
                errors.add(
                    msg![path, ".", key],
                    ValidationCode::UnknownField,
                    "a value condition has comparisonOperator and operand",
                );
            }
        }
        let op = match map.get("comparisonOperator") {
            Some(Json::String(op)) => Some(op.clone()),
            Some(other) => {
                wrong(errors, msg![path, ".comparisonOperator"], "a string", other);
                None
            }
            None => {
                errors.add(
                    msg![path, ".comparisonOperator"],
                    ValidationCode::MissingRequired,
                    "comparisonOperator is required",
                );
                None
            }
        };
        let at = msg![path, ".operand"];
        let operand = match map.get("operand") {
            Some(Json::Object(o)) => {
                let text = |errors: &mut ValidationErrors, key: &str| match o.get(key) {
                    None => None,
                    Some(Json::String(s)) => Some(s.clone()),
                    Some(other) => {
                        wrong(errors, msg![at, ".", key], "a string", other);
                        None
                    }
                };
                let list = |errors: &mut ValidationErrors, key: &str| match o.get(key) {
                    None => None,
                    Some(Json::Array(items)) => Some(
                        items
                            .iter()
                            .enumerate()
                            .filter_map(|(i, item)| match item {
                                Json::String(s) => Some(s.clone()),
                                other => {
                                    wrong(
                                        errors,
                                        msg![at, ".", key, "[", i, "]"],
                                        "a string",
                                        other,
                                    );
                                    None
                                }
                            })
                            .collect(),
                    ),
                    Some(other) => {
                        wrong(errors, msg![at, ".", key], "an array of strings", other);
                        None
                    }
                };
                for key in o.keys() {
                    if !matches!(
                        key.as_str(),
                        "number" | "numbers" | "string" | "strings" | "numberRange"
                    ) {
                        errors.add(
                            msg![at, ".", key],
                            ValidationCode::UnknownField,
                            "an operand has number, numbers, string, strings or numberRange",
                        );
                    }
                }
                let number_range = match o.get("numberRange") {
                    None => None,
                    Some(Json::Object(r)) => match (r.get("min"), r.get("max")) {
                        (Some(Json::String(min)), Some(Json::String(max))) => Some(NumberRange {
                            min: min.clone(),
                            max: max.clone(),
                        }),
                        _ => {
                            errors.add(
                                msg![at, ".numberRange"],
                                ValidationCode::WrongType,
                                "numberRange is {\"min\": \"number\", \"max\": \"number\"}",
                            );
                            None
                        }
                    },
                    Some(other) => {
                        wrong(errors, msg![at, ".numberRange"], "an object", other);
                        None
                    }
                };
                Some(Operand {
                    number: text(errors, "number"),
                    numbers: list(errors, "numbers"),
                    string: text(errors, "string"),
                    strings: list(errors, "strings"),
                    number_range,
                })
            }
            Some(other) => {
                wrong(errors, at, "an object", other);
                None
            }
            None => {
                errors.add(at, ValidationCode::MissingRequired, "operand is required");
                None
            }
        };
        if errors.len() != before {
            return None;
        }
        Some(Self {
            comparison_operator: op?,
            operand: operand?,
        })
    }

    /// Its JSON form (AWS's).
    pub fn to_json(&self) -> Json {
        let o = &self.operand;
        let mut operand = Json::object([]);
        let strings =
            |list: &[String]| Json::Array(list.iter().map(|s| Json::from(s.as_str())).collect());
        if let Some(n) = &o.number {
            operand.set("number", n.as_str());
        }
        if let Some(list) = &o.numbers {
            operand.set("numbers", strings(list));
        }
        if let Some(s) = &o.string {
            operand.set("string", s.as_str());
        }
        if let Some(list) = &o.strings {
            operand.set("strings", strings(list));
        }
        if let Some(r) = &o.number_range {
            operand.set(
                "numberRange",
                Json::object([
                    ("min", Json::from(r.min.as_str())),
                    ("max", Json::from(r.max.as_str())),
                ]),
            );
        }
        Json::object([
            (
                "comparisonOperator",
                Json::from(self.comparison_operator.as_str()),
            ),
            ("operand", operand),
        ])
    }
}

const OPERATORS: &str = "EQUALS, NOT_EQUALS, LESS_THAN, LESS_THAN_EQUALS, GREATER_THAN, GREATER_THAN_EQUALS, IN_SET, NOT_IN_SET, IN_RANGE, NOT_IN_RANGE";

impl ValueCondition {
    /// Checks the condition for a parameter of type `t` at `path`.
    pub fn compile(
        &self,
        t: ValueType,
        path: &str,
        errors: &mut ValidationErrors,
    ) -> Option<Compiled> {
        let before = errors.len();
        let bad = |errors: &mut ValidationErrors, message: String| {
            errors.add(path, ValidationCode::InvalidDefinition, message);
        };
        let op = self.comparison_operator.as_str();
        let numeric = t.is_numeric();
        let number = |errors: &mut ValidationErrors, text: &str| {
            let n = crate::value::number_from_text(text);
            if n.is_none() {
                errors.add(
                    path,
                    ValidationCode::InvalidDefinition,
                    msg![quote(text), " is not a number"],
                );
            }
            n
        };
        let needs = |errors: &mut ValidationErrors, field: &str| {
            errors.add(
                path,
                ValidationCode::InvalidDefinition,
                msg![op, " on type ", t, " takes operand.", field],
            );
        };
        let set_size = |errors: &mut ValidationErrors, n: usize| {
            if n == 0 || n > MAX_SET {
                errors.add(
                    path,
                    ValidationCode::InvalidDefinition,
                    msg!["a set holds 1 to ", MAX_SET, " values, got ", n],
                );
            }
        };
        let comparison = match op {
            "EQUALS" => Some(Comparison::Equals),
            "NOT_EQUALS" => Some(Comparison::NotEquals),
            "LESS_THAN" => Some(Comparison::LessThan),
            "LESS_THAN_EQUALS" => Some(Comparison::LessThanEquals),
            "GREATER_THAN" => Some(Comparison::GreaterThan),
            "GREATER_THAN_EQUALS" => Some(Comparison::GreaterThanEquals),
            _ => None,
        };
        let compiled = match (op, t) {
            (_, ValueType::B | ValueType::Bin) => {
                bad(
                    errors,
                    msg!["value conditions do not apply to ", t, " parameters"],
                );
                None
            }
            ("EQUALS" | "NOT_EQUALS", ValueType::S) => match &self.operand.string {
                Some(s) => Some(Compiled::StringIn {
                    negated: op == "NOT_EQUALS",
                    set: vec![s.clone()],
                }),
                None => {
                    needs(errors, "string");
                    None
                }
            },
            ("IN_SET" | "NOT_IN_SET", ValueType::S) => match &self.operand.strings {
                Some(set) => {
                    set_size(errors, set.len());
                    Some(Compiled::StringIn {
                        negated: op == "NOT_IN_SET",
                        set: set.clone(),
                    })
                }
                None => {
                    needs(errors, "strings");
                    None
                }
            },
            (_, ValueType::S) if comparison.is_some() || op.ends_with("_RANGE") => {
                bad(errors, msg![op, " does not apply to S parameters; use EQUALS, NOT_EQUALS, IN_SET or NOT_IN_SET"]);
                None
            }
            _ if numeric && comparison.is_some() => match &self.operand.number {
                Some(text) => number(errors, text)
                    .map(|n| Compiled::Compare(comparison.unwrap_or(Comparison::Equals), n)),
                None => {
                    needs(errors, "number");
                    None
                }
            },
            ("IN_SET" | "NOT_IN_SET", _) if numeric => match &self.operand.numbers {
                Some(texts) => {
                    set_size(errors, texts.len());
                    let set: Vec<JsonNumber> =
                        texts.iter().filter_map(|t| number(errors, t)).collect();
                    Some(Compiled::NumberIn {
                        negated: op == "NOT_IN_SET",
                        set,
                    })
                }
                None => {
                    needs(errors, "numbers");
                    None
                }
            },
            ("IN_RANGE" | "NOT_IN_RANGE", _) if numeric => match &self.operand.number_range {
                Some(range) => {
                    let (min, max) = (number(errors, &range.min), number(errors, &range.max));
                    match (min, max) {
                        (Some(min), Some(max)) => {
                            if Number::from_json(&min).partial_cmp(Number::from_json(&max))
                                == Some(std::cmp::Ordering::Greater)
                            {
                                bad(
                                    errors,
                                    msg![
                                        "the range's min (",
                                        min,
                                        ") is above its max (",
                                        max,
                                        ")"
                                    ],
                                );
                            }
                            Some(Compiled::Range {
                                negated: op == "NOT_IN_RANGE",
                                min,
                                max,
                            })
                        }
                        _ => None,
                    }
                }
                None => {
                    needs(errors, "numberRange");
                    None
                }
            },
            _ => {
                bad(
                    errors,
                    msg![
                        quote(op),
                        " is not a comparison operator; use one of ",
                        OPERATORS
                    ],
                );
                None
            }
        };
        (errors.len() == before).then_some(compiled).flatten()
    }
}

impl Compiled {
    /// Why `value` fails the condition, or `None` when it holds.
    pub fn refuses(&self, value: &TypedValue) -> Option<(ValidationCode, String)> {
        let cmp = |n: Number, bound: &JsonNumber| n.partial_cmp(Number::from_json(bound));
        match (self, value) {
            (Self::StringIn { negated, set }, TypedValue::S(s)) => {
                let found = set.iter().any(|v| v == s);
                (found == *negated).then(|| {
                    (
                        ValidationCode::NotInEnum,
                        msg![quote(s), self.message_tail()],
                    )
                })
            }
            (_, v) => {
                let n = v.as_number()?;
                let fails = match self {
                    Self::Compare(c, bound) => {
                        let o = cmp(n, bound);
                        use std::cmp::Ordering::{Equal, Greater, Less};
                        !matches!(
                            (c, o),
                            (Comparison::Equals, Some(Equal))
                                | (Comparison::NotEquals, Some(Less | Greater))
                                | (Comparison::LessThan, Some(Less))
                                | (Comparison::LessThanEquals, Some(Less | Equal))
                                | (Comparison::GreaterThan, Some(Greater))
                                | (Comparison::GreaterThanEquals, Some(Greater | Equal))
                        )
                    }
                    Self::NumberIn { negated, set } => {
                        set.iter()
                            .any(|b| cmp(n, b) == Some(std::cmp::Ordering::Equal))
                            == *negated
                    }
                    Self::Range { negated, min, max } => {
                        let inside = matches!(
                            cmp(n, min),
                            Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                        ) && matches!(
                            cmp(n, max),
                            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                        );
                        inside == *negated
                    }
                    Self::StringIn { .. } => false,
                };
                fails.then(|| (ValidationCode::OutOfRange, msg![n, self.message_tail()]))
            }
        }
    }

    /// A refusal's message after the value itself (`81` + ` is outside the
    /// range 60..80`): the same text on the server and, after the value as
    /// JavaScript writes it, in the generated validators.
    pub fn message_tail(&self) -> String {
        let one_of = |negated: bool| {
            if negated {
                " is one of the excluded values: "
            } else {
                " is not one of: "
            }
        };
        match self {
            Self::Compare(c, bound) => msg![c.words(), bound],
            Self::NumberIn { negated, set } => {
                let listed: Vec<String> = set.iter().map(|b| msg![b]).collect();
                msg![one_of(*negated), listed.join(", ")]
            }
            Self::Range { negated, min, max } => {
                let words = if *negated {
                    " is inside the excluded range "
                } else {
                    " is outside the range "
                };
                msg![words, min, "..", max]
            }
            Self::StringIn { negated, set } => {
                let words = match (negated, set.len()) {
                    (false, 1) => " must equal ",
                    (true, 1) => " must not equal ",
                    (negated, _) => one_of(*negated),
                };
                let listed: Vec<String> = set.iter().map(|v| quote(v)).collect();
                msg![words, listed.join(", ")]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(op: &str, operand: Operand) -> ValueCondition {
        ValueCondition {
            comparison_operator: op.into(),
            operand,
        }
    }

    fn range(min: &str, max: &str) -> Operand {
        Operand {
            number_range: Some(NumberRange {
                min: min.into(),
                max: max.into(),
            }),
            ..Operand::default()
        }
    }

    #[test]
    fn the_aws_example_range_applies_with_its_bounds() {
        let mut errors = ValidationErrors::new();
        let c = condition("IN_RANGE", range("60", "80"))
            .compile(ValueType::I, "p", &mut errors)
            .unwrap();
        assert!(c.refuses(&TypedValue::I(60)).is_none());
        assert!(c.refuses(&TypedValue::I(80)).is_none());
        assert_eq!(
            c.refuses(&TypedValue::I(81)),
            Some((
                ValidationCode::OutOfRange,
                "81 is outside the range 60..80".into()
            ))
        );
    }

    #[test]
    fn operators_apply_only_where_aws_allows_them() {
        let mut errors = ValidationErrors::new();
        let string = Operand {
            string: Some("ON".into()),
            ..Operand::default()
        };
        assert!(condition("LESS_THAN", string.clone())
            .compile(ValueType::S, "p", &mut errors)
            .is_none());
        assert!(condition("EQUALS", string)
            .compile(ValueType::B, "p", &mut errors)
            .is_none());
        assert!(condition("BETWEEN", range("1", "2"))
            .compile(ValueType::I, "p", &mut errors)
            .is_none());
        assert!(condition("IN_RANGE", range("9", "2"))
            .compile(ValueType::I, "p", &mut errors)
            .is_none());
        assert_eq!(errors.len(), 4, "{errors:?}");
    }

    #[test]
    fn unsigned_longs_compare_exactly() {
        let mut errors = ValidationErrors::new();
        let above = Operand {
            number: Some("18446744073709551614".into()),
            ..Operand::default()
        };
        let c = condition("GREATER_THAN", above)
            .compile(ValueType::Ul, "p", &mut errors)
            .unwrap();
        assert!(c.refuses(&TypedValue::Ul(u64::MAX)).is_none());
        assert!(c.refuses(&TypedValue::Ul(u64::MAX - 1)).is_some());
    }
}
