//! A line diff for policy versions: the common head and tail are skipped, the middle is a longest
//! common subsequence. Policies are a few hundred lines, so the quadratic table is small; past
//! [`MAX_CELLS`] the middle is shown as removed then added, which is still a correct diff.

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    /// In both texts.
    Same(&'a str),
    /// Only in the old text.
    Removed(&'a str),
    /// Only in the new text.
    Added(&'a str),
}

/// The largest LCS table built (old lines × new lines in the changed middle): 16 MB of `u32`.
const MAX_CELLS: usize = 4_000_000;

/// The lines of `new` against `old`, in order.
pub fn lines<'a>(old: &'a str, new: &'a str) -> Vec<Line<'a>> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    let mut out: Vec<Line<'a>> = a[..head].iter().map(|l| Line::Same(l)).collect();
    if ma.len().saturating_mul(mb.len()) > MAX_CELLS {
        out.extend(ma.iter().map(|l| Line::Removed(l)));
        out.extend(mb.iter().map(|l| Line::Added(l)));
    } else {
        middle(ma, mb, &mut out);
    }
    out.extend(a[a.len() - tail..].iter().map(|l| Line::Same(l)));
    out
}

/// The LCS walk: `len[i][j]` is the LCS length of `a[i..]` and `b[j..]`.
fn middle<'a>(a: &[&'a str], b: &[&'a str], out: &mut Vec<Line<'a>>) {
    let w = b.len() + 1;
    let mut len = vec![0u32; (a.len() + 1) * w];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            len[i * w + j] = if a[i] == b[j] {
                len[(i + 1) * w + j + 1] + 1
            } else {
                len[(i + 1) * w + j].max(len[i * w + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(Line::Same(a[i]));
            i += 1;
            j += 1;
        } else if len[(i + 1) * w + j] >= len[i * w + j + 1] {
            out.push(Line::Removed(a[i]));
            i += 1;
        } else {
            out.push(Line::Added(b[j]));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|l| Line::Removed(l)));
    out.extend(b[j..].iter().map(|l| Line::Added(l)));
}

#[cfg(test)]
mod tests {
    use super::{lines, Line};

    #[test]
    fn a_changed_line_is_removed_then_added_and_the_rest_kept() {
        let old = "grants:\n  - a\nrules:\n  - id: x\n    action: allow\n";
        let new = "grants:\n  - a\n  - b\nrules:\n  - id: x\n    action: block\n";
        assert_eq!(
            lines(old, new),
            [
                Line::Same("grants:"),
                Line::Same("  - a"),
                Line::Added("  - b"),
                Line::Same("rules:"),
                Line::Same("  - id: x"),
                Line::Removed("    action: allow"),
                Line::Added("    action: block"),
            ]
        );
    }

    #[test]
    fn empty_sides() {
        assert_eq!(lines("", "a"), [Line::Added("a")]);
        assert_eq!(lines("a", ""), [Line::Removed("a")]);
        assert!(lines("", "").is_empty());
        assert_eq!(lines("a\nb", "a\nb"), [Line::Same("a"), Line::Same("b")]);
    }
}
