//! An option variable's value split into words the way the runtime that
//! reads it splits it, so a ceiling memwatch reads there is one the runtime
//! applies (a quoted value holding `-Xmx4g` is part of another option).
//! A value the runtime refuses (an unmatched quote: the JVM and Node exit
//! on it) gives no words.

/// `JAVA_TOOL_OPTIONS`, `JDK_JAVA_OPTIONS`, `_JAVA_OPTIONS`, as HotSpot
/// splits them: at ASCII white space, except inside single or double
/// quotes, which are removed (no escapes; `''` is an empty word).
pub fn jvm(value: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.next_if(char::is_ascii_whitespace).is_some() {}
        if chars.peek().is_none() {
            return Some(words);
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_ascii_whitespace()) {
            if c == '\'' || c == '"' {
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(inner) => word.push(inner),
                        None => return None,
                    }
                }
            } else {
                word.push(c);
            }
        }
        words.push(word);
    }
}

/// `NODE_OPTIONS`, as Node splits it: at spaces only, except inside double
/// quotes, which are removed and within which a backslash takes the next
/// character as it is; single quotes are characters like any other.
pub fn node(value: &str) -> Option<Vec<String>> {
    let mut words: Vec<String> = Vec::new();
    let (mut quoted, mut new_word) = (false, true);
    let mut chars = value.chars();
    while let Some(mut c) = chars.next() {
        if c == '\\' && quoted {
            c = chars.next()?;
        } else if c == ' ' && !quoted {
            new_word = true;
            continue;
        } else if c == '"' {
            quoted = !quoted;
            continue;
        }
        match words.last_mut() {
            Some(word) if !new_word => word.push(c),
            _ => words.push(c.to_string()),
        }
        new_word = false;
    }
    (!quoted).then_some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jvm_splits_at_ascii_white_space_outside_either_quote() {
        assert_eq!(jvm("  -a\t\"b c\"d '' e\n").unwrap(), ["-a", "b cd", "", "e"]);
        assert_eq!(jvm(r#"-Dx="a -Xmx4g b" -Xmx1g"#).unwrap(), ["-Dx=a -Xmx4g b", "-Xmx1g"]);
        assert_eq!(jvm("-Da\u{a0}-Xmx4g").unwrap(), ["-Da\u{a0}-Xmx4g"], "a no-break space is no separator");
        assert_eq!(jvm(r"-Dp=a\ b").unwrap(), [r"-Dp=a\", "b"], "no escapes");
        assert_eq!(jvm("-Xmx1g \"unterminated"), None);
        assert_eq!(jvm("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn node_splits_at_spaces_outside_double_quotes_with_escapes_inside() {
        assert_eq!(
            node(r#"--title="x \" --max-old-space-size=4096 \"" --inspect"#).unwrap(),
            [r#"--title=x " --max-old-space-size=4096 ""#, "--inspect"]
        );
        assert_eq!(
            node("--a\t--max-old-space-size=4096").unwrap(),
            ["--a\t--max-old-space-size=4096"],
            "tabs do not split"
        );
        assert_eq!(node("'--x --y'").unwrap(), ["'--x", "--y'"], "single quotes are characters");
        assert_eq!(node(r#"  a  "" b"#).unwrap(), ["a", "b"], "empty quotes make no word");
        assert_eq!(node(r#"--x "unterminated"#), None);
        assert_eq!(node(r#""\"#), None, "an escape at the end");
    }
}
