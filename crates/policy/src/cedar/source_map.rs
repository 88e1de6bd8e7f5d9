//! Maps byte offsets in the Cedar text back to `line:column` in the YAML file, so a Cedar error points
//! at the policy file like every other error.
//!
//! serde does not report where a successfully parsed value came from, so the `cedar:` key is found in the
//! YAML text itself. For a literal block scalar (`cedar: |`) every text line is one YAML line shifted by
//! the block's indentation; that is checked by rebuilding the scalar from the YAML lines and comparing it
//! with what the YAML parser produced. Any other style (quoted, folded) falls back to the key's line and
//! names the position inside the Cedar text in the message.

/// Where the Cedar text sits in the YAML file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceMap {
    /// 1-based line of the `cedar:` key.
    key_line: Option<usize>,
    /// For a literal block: the 1-based YAML line of the text's first line, and the indentation.
    block: Option<(usize, usize)>,
}

/// A position in the YAML file, and a note when it is only the key's line.
pub(crate) struct Position {
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// ` (line L, column C of the cedar text)` when `line` is the key's line rather than the exact one.
    pub note: String,
}

impl SourceMap {
    /// Finds the top-level `cedar:` key in `yaml` whose parsed value is `text`.
    pub(crate) fn locate(yaml: &str, text: &str) -> SourceMap {
        let lines: Vec<&str> = yaml.lines().collect();
        let Some(key) = lines.iter().position(|l| is_cedar_key(l)) else {
            return SourceMap {
                key_line: None,
                block: None,
            };
        };
        let header = lines
            .get(key)
            .and_then(|l| l.split_once(':'))
            .map_or("", |(_, rest)| rest.trim());
        let block = literal_indicator(header).and_then(|explicit| {
            let body = lines.get(key + 1..).unwrap_or(&[]);
            let indent = match explicit {
                Some(n) => n,
                None => body
                    .iter()
                    .find(|l| !l.trim().is_empty())
                    .map(|l| l.len() - l.trim_start_matches(' ').len())?,
            };
            if indent == 0 {
                return None;
            }
            let content: Vec<&str> = body
                .iter()
                .take_while(|l| l.trim().is_empty() || l.starts_with(&" ".repeat(indent)))
                .map(|l| l.get(indent..).unwrap_or(""))
                .collect();
            let rebuilt = content.join("\n");
            (rebuilt.trim_end_matches('\n') == text.trim_end_matches('\n'))
                .then_some((key + 2, indent))
        });
        SourceMap {
            key_line: Some(key + 1),
            block,
        }
    }

    /// The YAML position of byte `offset` of `text`.
    pub(crate) fn position(&self, text: &str, offset: usize) -> Position {
        let before = text.get(..offset).unwrap_or(text);
        let line_index = before.matches('\n').count();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        match self.block {
            Some((first, indent)) => Position {
                line: Some(first + line_index),
                column: Some(indent + column),
                note: String::new(),
            },
            None => Position {
                line: self.key_line,
                column: None,
                note: format!(
                    " (line {}, column {column} of the cedar text; write it as a block `cedar: |` for exact positions)",
                    line_index + 1
                ),
            },
        }
    }

    /// The position of the `cedar:` key itself.
    pub(crate) fn key(&self) -> Position {
        Position {
            line: self.key_line,
            column: self.key_line.map(|_| 1),
            note: String::new(),
        }
    }
}

fn is_cedar_key(line: &str) -> bool {
    line.strip_prefix("cedar")
        .is_some_and(|rest| rest.trim_start().starts_with(':'))
}

/// For a literal block header (`|`, `|-`, `|+`, `|2`, `|2-`, optionally followed by a comment), the
/// explicit indentation if any; `None` when the header is not a literal block.
fn literal_indicator(header: &str) -> Option<Option<usize>> {
    let header = header.split(" #").next().unwrap_or("").trim();
    let rest = header.strip_prefix('|')?;
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || c == '-' || c == '+')
    {
        return None;
    }
    Some(digits.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_block_maps_lines_and_columns() {
        let yaml = "rules: []\ncedar: |\n  permit(\n\n    x);\n";
        let text = "permit(\n\n  x);\n";
        let map = SourceMap::locate(yaml, text);
        let p = map.position(text, text.find('x').unwrap_or(0));
        assert_eq!((p.line, p.column), (Some(5), Some(5)));
        assert!(p.note.is_empty());
    }

    #[test]
    fn other_styles_fall_back_to_the_key_line() {
        let yaml = "cedar: \"permit(principal, action, resource);\"\n";
        let text = "permit(principal, action, resource);";
        let p = SourceMap::locate(yaml, text).position(text, 7);
        assert_eq!((p.line, p.column), (Some(1), None));
        assert!(p.note.contains("line 1, column 8"), "{}", p.note);
    }
}
