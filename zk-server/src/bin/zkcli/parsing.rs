//! Reading what the user typed as zkCli reads it: the program's own flags
//! (`ZooKeeperMain.parseOptions`), a command line split into words (`parseCommand`'s
//! regular expression, quotes and all), each command's flags (commons-cli's
//! `DefaultParser`, with its error messages) and znode paths (`PathUtils.validatePath`).

/// The program's flags.
#[derive(Debug, Clone)]
pub struct MainOptions {
    /// `-server`: the connect string (default `localhost:2181`).
    pub server: String,
    /// `-timeout`: the session timeout in ms (default 30000).
    pub timeout_ms: u64,
    /// `-r`: accept read-only servers.
    pub read_only: bool,
    /// `-waitforconnection`: wait for the session before running anything.
    pub wait_for_connection: bool,
    /// `-client-configuration`: a Java properties file of `zookeeper.*` client settings.
    pub client_configuration: Option<String>,
    /// The command to run and exit, if one was given.
    pub command: Option<Vec<String>>,
}

impl MainOptions {
    /// Parses the program's arguments; an error is the message to print (exit 2).
    pub fn parse(args: &[String]) -> Result<MainOptions, String> {
        let mut o = MainOptions {
            server: "localhost:2181".into(),
            timeout_ms: 30_000,
            read_only: false,
            wait_for_connection: false,
            client_configuration: None,
            command: None,
        };
        let mut it = args.iter();
        while let Some(opt) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("Error: no argument found for option {opt}"))
            };
            match opt.as_str() {
                "-server" => o.server = value()?,
                "-timeout" => {
                    let v = value()?;
                    o.timeout_ms = v
                        .trim()
                        .parse()
                        .map_err(|_| format!("Error: -timeout must be a number of ms: {v}"))?;
                }
                "-r" => o.read_only = true,
                "-client-configuration" => o.client_configuration = Some(value()?),
                "-waitforconnection" => o.wait_for_connection = true,
                // zkCli ignores other flags; `-h`/`--help` get the usage.
                "-h" | "-help" | "--help" => return Err(String::new()),
                s if s.starts_with('-') => {}
                _ => {
                    let mut cmd = vec![opt.clone()];
                    cmd.extend(it.by_ref().cloned());
                    o.command = Some(cmd);
                    break;
                }
            }
        }
        Ok(o)
    }
}

/// Splits a command line into words as `ZooKeeperMain.MyCommandOptions.parseCommand`:
/// the pattern `\s*([^"']\S*|"[^"]*"|'[^']*')\s*` found repeatedly, then a word quoted
/// at both ends with the same quote loses its quotes.
pub fn split_words(line: &str) -> Vec<String> {
    let c: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut from = 0;
    while from < c.len() {
        let Some((word, end)) = (from..c.len()).find_map(|s| match_at(&c, s)) else {
            break;
        };
        words.push(unquote(word));
        if end == from {
            break; // an empty match cannot happen (the group needs a character); be safe
        }
        from = end;
    }
    words
}

/// One match of the pattern at `start`: the group and where the match ends.
fn match_at(c: &[char], start: usize) -> Option<(String, usize)> {
    let ws_end = (start..c.len())
        .find(|&i| !c[i].is_whitespace())
        .unwrap_or(c.len());
    // `\s*` is greedy: try the longest run of spaces first, then give them back.
    for k in (start..=ws_end).rev() {
        let Some(&first) = c.get(k) else { continue };
        let group_end = if first != '"' && first != '\'' {
            Some(
                (k + 1..c.len())
                    .find(|&i| c[i].is_whitespace())
                    .unwrap_or(c.len()),
            )
        } else {
            (k + 1..c.len()).find(|&i| c[i] == first).map(|i| i + 1)
        };
        if let Some(g) = group_end {
            let end = (g..c.len())
                .find(|&i| !c[i].is_whitespace())
                .unwrap_or(c.len());
            return Some((c[k..g].iter().collect(), end));
        }
    }
    None
}

fn unquote(w: String) -> String {
    let quoted = w.len() >= 2
        && ((w.starts_with('"') && w.ends_with('"')) || (w.starts_with('\'') && w.ends_with('\'')));
    if quoted {
        w[1..w.len() - 1].to_string()
    } else {
        w
    }
}

/// One flag of a command: its name (`s`, `v`, or reconfig's `members`), whether it takes
/// a value, and its description (used in commons-cli's messages).
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    /// Name without the dash.
    pub name: &'static str,
    /// Takes a value.
    pub has_arg: bool,
    /// Description.
    pub desc: &'static str,
}

/// A command's flags, and optionally a group of them of which at most one may be given
/// (and, if `required`, exactly one): setquota's `-n|-b|-N|-B`.
#[derive(Debug, Clone, Copy)]
pub struct FlagSpec {
    /// The flags.
    pub flags: &'static [Flag],
    /// Names forming an exclusive group.
    pub group: &'static [&'static str],
    /// Whether one of the group is required.
    pub group_required: bool,
}

/// A parsed command line: the flags given (with values) and the other words (the command
/// name first, as commons-cli's `getArgs()` in zkCli).
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    flags: Vec<(&'static str, Option<String>)>,
    /// Command name and positional arguments.
    pub args: Vec<String>,
}

impl Parsed {
    /// Whether `name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(n, _)| *n == name)
    }

    /// The first value given for `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(n, v)| *n == name && v.is_some())
            .and_then(|(_, v)| v.as_deref())
    }
}

impl FlagSpec {
    fn find(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name == name)
    }

    fn is_option(&self, token: &str) -> bool {
        if !token.starts_with('-') || token.len() == 1 {
            return false;
        }
        let name = token[1..].split('=').next().unwrap_or("");
        self.find(name).is_some()
            || name
                .chars()
                .next()
                .is_some_and(|c| self.find(c.encode_utf8(&mut [0; 4])).is_some())
    }

    fn is_argument(&self, token: &str) -> bool {
        !self.is_option(token) || token.parse::<f64>().is_ok()
    }

    /// commons-cli's `DefaultParser.parse` (stopAtNonOption false): flags anywhere, `--`
    /// ends them, errors worded as its exceptions print in zkCli.
    pub fn parse(&self, tokens: &[String]) -> Result<Parsed, String> {
        let mut p = Parsed::default();
        let mut waiting: Option<&'static str> = None;
        let mut only_args = false;
        for token in tokens {
            if let Some(name) = waiting {
                if self.is_argument(token) {
                    p.flags.push((name, Some(token.clone())));
                    waiting = None;
                    continue;
                }
                return Err(missing_argument(name));
            }
            if only_args {
                p.args.push(token.clone());
            } else if token == "--" {
                only_args = true;
            } else if token == "-" || !token.starts_with('-') {
                p.args.push(token.clone());
            } else if token.starts_with("--") {
                return Err(unrecognized(token));
            } else {
                waiting = self.short_option(token, &mut p)?;
            }
        }
        if let Some(name) = waiting {
            return Err(missing_argument(name));
        }
        if self.group_required && !self.group.iter().any(|g| p.has(g)) {
            let names: Vec<String> = self
                .group
                .iter()
                .filter_map(|g| self.find(g))
                .map(|f| format!("-{} {}", f.name, f.desc))
                .collect();
            return Err(format!(
                "org.apache.commons.cli.MissingOptionException: Missing required option: [{}]",
                names.join(", ")
            ));
        }
        Ok(p)
    }

    /// One `-x...` token; returns the flag still waiting for its value, if any.
    fn short_option(&self, token: &str, p: &mut Parsed) -> Result<Option<&'static str>, String> {
        let t = &token[1..];
        if let Some(f) = self.find(t) {
            return self.select(f, p);
        }
        let first: String = t.chars().take(1).collect();
        match self.find(&first) {
            // `-v5`: the value glued to a one-letter flag.
            Some(f) if f.has_arg && t.len() > first.len() => {
                self.select(f, p)?;
                p.flags.pop();
                p.flags.push((f.name, Some(t[first.len()..].to_string())));
                Ok(None)
            }
            Some(_) => {
                // `-sw`: several one-letter flags, the last may take the rest as value.
                let chars: Vec<(usize, char)> = t.char_indices().collect();
                for (i, ch) in &chars {
                    let name = ch.to_string();
                    let Some(f) = self.find(&name) else {
                        return Err(unrecognized(token));
                    };
                    let waiting = self.select(f, p)?;
                    if waiting.is_some() {
                        let rest = &t[i + ch.len_utf8()..];
                        if rest.is_empty() {
                            return Ok(waiting);
                        }
                        p.flags.pop();
                        p.flags.push((f.name, Some(rest.to_string())));
                        return Ok(None);
                    }
                }
                Ok(None)
            }
            None => Err(unrecognized(token)),
        }
    }

    fn select(&self, f: &Flag, p: &mut Parsed) -> Result<Option<&'static str>, String> {
        if self.group.contains(&f.name) {
            if let Some(other) = self.group.iter().find(|g| **g != f.name && p.has(g)) {
                return Err(format!(
                    "org.apache.commons.cli.AlreadySelectedException: The option '{}' was \
                     specified but an option from this group has already been selected: '{}'",
                    f.name, other
                ));
            }
        }
        p.flags.push((f.name, None));
        Ok(if f.has_arg { Some(f.name) } else { None })
    }
}

fn unrecognized(token: &str) -> String {
    format!("org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {token}")
}

fn missing_argument(name: &str) -> String {
    format!("org.apache.commons.cli.MissingArgumentException: Missing argument for option: {name}")
}

/// `PathUtils.validatePath`: the same checks and messages as Java's client.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("Path length must be > 0".into());
    }
    if !path.starts_with('/') {
        return Err("Path must start with / character".into());
    }
    // Java works on UTF-16 units; positions below count chars, which agree for the BMP.
    let chars: Vec<char> = path.chars().collect();
    if chars.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("Path must not end with / character".into());
    }
    let mut reason = None;
    let mut last = '/';
    for i in 1..chars.len() {
        let c = chars[i];
        let next_is_end = i + 1 == chars.len() || chars[i + 1] == '/';
        if c == '\0' {
            reason = Some(format!("null character not allowed @{i}"));
        } else if c == '/' && last == '/' {
            reason = Some(format!("empty node name specified @{i}"));
        } else if c == '.' && last == '.' {
            if chars[i - 2] == '/' && next_is_end {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if c == '.' {
            if chars[i - 1] == '/' && next_is_end {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if ('\u{1}'..='\u{1f}').contains(&c)
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c)
            || (c as u32) > 0xffff
        {
            reason = Some(format!("invalid character @{i}"));
        }
        if reason.is_some() {
            break;
        }
        last = c;
    }
    match reason {
        Some(r) => Err(format!("Invalid path string \"{path}\" caused by {r}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        split_words(s)
    }

    #[test]
    fn words_and_quotes_as_zkcli() {
        assert_eq!(w("create /a hello"), ["create", "/a", "hello"]);
        assert_eq!(w("  set /a \"x y\"  "), ["set", "/a", "x y"]);
        assert_eq!(w("set /a 'it is'"), ["set", "/a", "it is"]);
        assert_eq!(w("set /a ''"), ["set", "/a", ""]);
        // A quote inside a word stays; an unclosed quote is skipped as the regex does.
        assert_eq!(w("set /a x\"y"), ["set", "/a", "x\"y"]);
        assert_eq!(w("get \"abc"), ["get", "abc"]);
        assert_eq!(w("\"a\"b"), ["a", "b"]);
        // As Java's regex: blanks alone give one blank word (the shell skips such lines).
        assert_eq!(w("   "), [" "]);
        assert!(w("").is_empty());
    }

    const LS: FlagSpec = FlagSpec {
        flags: &[
            Flag {
                name: "s",
                has_arg: false,
                desc: "stat",
            },
            Flag {
                name: "w",
                has_arg: false,
                desc: "watch",
            },
            Flag {
                name: "v",
                has_arg: true,
                desc: "version",
            },
        ],
        group: &[],
        group_required: false,
    };

    fn toks(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn flags_as_commons_cli() {
        let p = LS.parse(&toks("ls -s /a -w")).unwrap();
        assert!(p.has("s") && p.has("w"));
        assert_eq!(p.args, ["ls", "/a"]);
        let p = LS.parse(&toks("set -sw /a")).unwrap();
        assert!(p.has("s") && p.has("w"));
        let p = LS.parse(&toks("set -v5 /a")).unwrap();
        assert_eq!(p.value("v"), Some("5"));
        let p = LS.parse(&toks("set -v -1 /a")).unwrap();
        assert_eq!(p.value("v"), Some("-1"));
        assert_eq!(
            LS.parse(&toks("ls -x /a")).unwrap_err(),
            "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -x"
        );
        assert_eq!(
            LS.parse(&toks("set /a -v")).unwrap_err(),
            "org.apache.commons.cli.MissingArgumentException: Missing argument for option: v"
        );
        let p = LS.parse(&toks("set -- /a -s")).unwrap();
        assert_eq!(p.args, ["set", "/a", "-s"]);
    }

    #[test]
    fn paths_as_java() {
        assert!(validate_path("/").is_ok());
        assert!(validate_path("/a/b").is_ok());
        assert_eq!(
            validate_path("a").unwrap_err(),
            "Path must start with / character"
        );
        assert_eq!(
            validate_path("/a/").unwrap_err(),
            "Path must not end with / character"
        );
        assert_eq!(
            validate_path("/a//b").unwrap_err(),
            "Invalid path string \"/a//b\" caused by empty node name specified @3"
        );
        assert_eq!(
            validate_path("/a/./b").unwrap_err(),
            "Invalid path string \"/a/./b\" caused by relative paths not allowed @3"
        );
    }
}
