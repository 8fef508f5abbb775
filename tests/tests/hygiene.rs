//! Repository hygiene, checked like any other behaviour.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sauve_tests::repo_root;

// The steps `cargo xtask ci` runs, compiled into this test as well: no xtask
// build and no subprocess is needed to know them, and xtask's `ci` runs
// exactly this list (`cargo xtask ci --print` shows it).
#[path = "../../xtask/src/ci_steps.rs"]
mod ci_steps;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn ci_runs_the_readme_test_command() {
    let readme = read("README.md");
    let first_block: Vec<&str> = readme
        .split("```")
        .nth(1)
        .expect("README opens with a code block")
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        first_block.len(),
        2,
        "the main command and the test command"
    );
    // Each is one plain cargo command, as a person pastes it.
    let steps = cargo_steps(&first_block.join("\n")).unwrap_or_else(|e| panic!("README: {e}"));
    assert_eq!(steps.len(), 2, "README's commands: {steps:?}");
    // The test command installs what the suite needs, then runs it: CI
    // runs the very same line, as a step of its own (not in a chain, a
    // condition or a substitution, nor in a comment).
    let test_command = first_block[1];
    assert_eq!(test_command, "cargo xtask test");
    assert_eq!(steps[1], test_command);
    assert!(
        first_block[0].starts_with("cargo run") && first_block[0].contains(" demo"),
        "{}",
        first_block[0]
    );
    let ci = cargo_steps(&read(".ci/run")).unwrap_or_else(|e| panic!(".ci/run: {e}"));
    assert!(
        ci.iter().any(|s| s == test_command),
        ".ci/run does not run `{test_command}`: {ci:?}"
    );
    assert!(ci.iter().any(|s| s == "cargo fmt --all --check"), "{ci:?}");
    assert!(
        ci.iter()
            .any(|s| s.starts_with("cargo clippy ") && s.ends_with(" -- -D warnings")),
        "{ci:?}"
    );
}

/// The cargo commands a CI shell script runs, in order, as written without a
/// `timeout N` guard. Tool installation (`cargo install`) and version reports
/// (`--version`) are not steps, wherever they are. The script is read as the
/// shell reads it (quotes, escapes, comments, continuations, `$(…)` and
/// backquotes, `&&`, `||`, `|`, `;`, `&`), so a `"cargo"` is cargo and a
/// `#` inside quotes is no comment. Any other command that names cargo (in
/// a substitution, a chain, a condition, behind another command or a
/// variable) is an error rather than skipped, so that no step can hide
/// from the comparison.
fn cargo_steps(script: &str) -> Result<Vec<String>, String> {
    let mut steps = Vec::new();
    for line in shell::lines(script)? {
        for command in &line.commands {
            if !command.words.iter().any(|w| shell::names_cargo(w)) || command.is_tool_setup() {
                continue;
            }
            let words: Vec<&str> = command.words.iter().map(String::as_str).collect();
            let step = match words.as_slice() {
                ["timeout", seconds, rest @ ..] if seconds.parse::<u64>().is_ok() => rest,
                all => all,
            };
            // Alone on its line, but for the substitutions in its words.
            let plain = !command.nested && !line.chained && step.first() == Some(&"cargo");
            if !plain {
                return Err(format!(
                    "cannot tell which cargo command `{}` runs",
                    line.text
                ));
            }
            steps.push(step.join(" "));
        }
    }
    Ok(steps)
}

/// A shell script read as far as telling which commands it runs: enough of
/// the POSIX shell's quoting and operators that no command is mistaken for
/// another's argument.
mod shell {
    /// One simple command: its words, quotes and escapes removed (a
    /// substitution in a word stands as `$(…)`, its commands being read on
    /// their own).
    pub(super) struct Command {
        pub(super) words: Vec<String>,
        /// Inside `$(…)`, backquotes or a `( … )` subshell.
        pub(super) nested: bool,
    }

    impl Command {
        /// `cargo install …` or a version report (`cargo … --version`),
        /// after any `if`, `!` and the like.
        pub(super) fn is_tool_setup(&self) -> bool {
            let words: Vec<&str> = self
                .words
                .iter()
                .map(String::as_str)
                .skip_while(|w| {
                    [
                        "if", "then", "elif", "else", "while", "until", "do", "!", "{",
                    ]
                    .contains(w)
                })
                .collect();
            words.first() == Some(&"cargo")
                && (words.get(1) == Some(&"install") || words.contains(&"--version"))
        }
    }

    /// One line as the shell reads it (a continuation, or a newline inside
    /// quotes or a substitution, does not end it).
    pub(super) struct Line {
        /// As written, without its comment.
        pub(super) text: String,
        /// Its simple commands, those of its substitutions included.
        pub(super) commands: Vec<Command>,
        /// Whether an operator joins or ends commands on it (`&&`, `||`,
        /// `|`, `;`, `&`, or a newline inside a substitution).
        pub(super) chained: bool,
    }

    /// Whether a word names cargo: `cargo`, `/path/to/cargo`, `$CARGO`, or a
    /// quoted script that runs it (`sh -c 'cargo test'`). `cargo-nextest`
    /// and `.cargo/config.toml` do not.
    pub(super) fn names_cargo(word: &str) -> bool {
        word.split(|c: char| !(c.is_ascii_alphanumeric() || "_.-".contains(c)))
            .any(|piece| piece.eq_ignore_ascii_case("cargo"))
    }

    pub(super) fn lines(script: &str) -> Result<Vec<Line>, String> {
        let mut reader = Reader {
            chars: script.chars().collect(),
            at: 0,
            commands: Vec::new(),
            chained: false,
            comment: None,
        };
        let mut lines = Vec::new();
        while reader.at < reader.chars.len() {
            let start = reader.at;
            let end = reader.list(false, None)?;
            let text: String = reader.chars[start..end].iter().collect();
            lines.push(Line {
                text: text.trim().to_owned(),
                commands: std::mem::take(&mut reader.commands),
                chained: std::mem::take(&mut reader.chained),
            });
        }
        Ok(lines)
    }

    struct Reader {
        chars: Vec<char>,
        at: usize,
        /// The commands of the line being read.
        commands: Vec<Command>,
        chained: bool,
        /// Where the comment of the line being read starts.
        comment: Option<usize>,
    }

    /// The words of the simple command being read.
    #[derive(Default)]
    struct Words {
        done: Vec<String>,
        word: String,
        started: bool,
    }

    impl Words {
        fn end_word(&mut self) {
            if self.started {
                self.done.push(std::mem::take(&mut self.word));
                self.started = false;
            }
        }

        fn push(&mut self, c: char) {
            self.word.push(c);
            self.started = true;
        }

        fn push_str(&mut self, s: &str) {
            self.word.push_str(s);
            self.started = true;
        }
    }

    impl Reader {
        fn peek(&self, ahead: usize) -> Option<char> {
            self.chars.get(self.at + ahead).copied()
        }

        fn end_command(&mut self, words: &mut Words, nested: bool) {
            words.end_word();
            if !words.done.is_empty() {
                self.commands.push(Command {
                    words: std::mem::take(&mut words.done),
                    nested,
                });
            }
        }

        /// Reads commands up to `closer` (`)` or a backquote, inside a
        /// substitution), or else to the end of the line. Returns where the
        /// line's text ends (its comment excluded).
        fn list(&mut self, nested: bool, closer: Option<char>) -> Result<usize, String> {
            let mut words = Words::default();
            loop {
                let Some(c) = self.peek(0) else {
                    if closer.is_some() {
                        return Err("the script ends inside a substitution".to_owned());
                    }
                    self.end_command(&mut words, nested);
                    return Ok(self.comment.take().unwrap_or(self.at));
                };
                match c {
                    '\\' if self.peek(1) == Some('\n') => self.at += 2,
                    '\\' => {
                        self.at += 1;
                        if let Some(escaped) = self.peek(0) {
                            words.push(escaped);
                            self.at += 1;
                        }
                    }
                    '\'' => {
                        self.at += 1;
                        let close = self.chars[self.at..]
                            .iter()
                            .position(|&q| q == '\'')
                            .ok_or("the script ends inside a '-quoted string")?;
                        let quoted: String = self.chars[self.at..self.at + close].iter().collect();
                        words.push_str(&quoted);
                        self.at += close + 1;
                    }
                    '"' => {
                        self.at += 1;
                        self.double_quoted(&mut words)?;
                    }
                    '`' if closer == Some('`') => {
                        self.at += 1;
                        self.end_command(&mut words, nested);
                        return Ok(self.at);
                    }
                    '`' | '$' | '(' if self.substitution(&mut words, c == '(')? => {}
                    ')' if closer == Some(')') => {
                        self.at += 1;
                        self.end_command(&mut words, nested);
                        return Ok(self.at);
                    }
                    '#' if !words.started => {
                        if closer.is_none() {
                            self.comment.get_or_insert(self.at);
                        }
                        while self.peek(0).is_some_and(|c| c != '\n') {
                            self.at += 1;
                        }
                    }
                    '\n' => {
                        self.at += 1;
                        self.end_command(&mut words, nested);
                        if closer.is_none() {
                            return Ok(self.comment.take().unwrap_or(self.at - 1));
                        }
                        self.chained = true;
                    }
                    // A redirection (`2>&1`, `>&2`, `&>file`) is part of a word.
                    '&' if words.word.ends_with(['>', '<']) || self.peek(1) == Some('>') => {
                        words.push(c);
                        self.at += 1;
                    }
                    ';' | '&' | '|' | ')' => {
                        self.end_command(&mut words, nested);
                        self.chained = true;
                        self.at += 1;
                        if self
                            .peek(0)
                            .is_some_and(|n| n == c || (c == '|' && n == '&'))
                        {
                            self.at += 1;
                        }
                    }
                    ' ' | '\t' | '\r' => {
                        words.end_word();
                        self.at += 1;
                    }
                    c => {
                        words.push(c);
                        self.at += 1;
                    }
                }
            }
        }

        /// At a backquote, `$(`, `$((` or (`subshell`, at a word's start)
        /// `(`: reads what it holds (its commands nested) and says `true`;
        /// anything else (a `$` of a variable, `(` inside a word) says
        /// `false` and reads nothing.
        fn substitution(&mut self, words: &mut Words, subshell: bool) -> Result<bool, String> {
            match (self.peek(0), self.peek(1), self.peek(2)) {
                (Some('$'), Some('('), Some('(')) => {
                    // Arithmetic runs no command: kept as written.
                    let mut depth = 0usize;
                    while let Some(c) = self.peek(0) {
                        words.push(c);
                        self.at += 1;
                        match c {
                            '(' => depth += 1,
                            ')' if depth <= 1 => return Ok(true),
                            ')' => depth -= 1,
                            _ => {}
                        }
                    }
                    Err("the script ends inside $((…))".to_owned())
                }
                (Some('$'), Some('('), _) => {
                    self.at += 2;
                    self.list(true, Some(')'))?;
                    words.push_str("$(…)");
                    Ok(true)
                }
                (Some('`'), _, _) => {
                    self.at += 1;
                    self.list(true, Some('`'))?;
                    words.push_str("$(…)");
                    Ok(true)
                }
                (Some('('), _, _) if subshell && !words.started => {
                    self.at += 1;
                    self.list(true, Some(')'))?;
                    self.chained = true;
                    Ok(true)
                }
                _ => Ok(false),
            }
        }

        /// After an opening `"`: up to its closing one, where only `\`,
        /// `$(…)` and backquotes are special.
        fn double_quoted(&mut self, words: &mut Words) -> Result<(), String> {
            words.started = true;
            loop {
                match self.peek(0) {
                    None => return Err("the script ends inside a \"-quoted string".to_owned()),
                    Some('"') => {
                        self.at += 1;
                        return Ok(());
                    }
                    Some('\\') if self.peek(1).is_some_and(|n| "\"\\$`\n".contains(n)) => {
                        if self.peek(1) != Some('\n') {
                            words.push(self.chars[self.at + 1]);
                        }
                        self.at += 2;
                    }
                    Some('$' | '`') if self.substitution(words, false)? => {}
                    Some(c) => {
                        words.push(c);
                        self.at += 1;
                    }
                }
            }
        }
    }
}

#[test]
fn ci_script_steps_are_its_cargo_lines_without_timeouts_tool_setup_or_comments() {
    let setup = "if ! cargo nextest --version >/dev/null 2>&1; then\n  cargo install cargo-nextest --locked\nfi\ncargo --version\ncargo nextest --version | head -n 1\n";
    let cannot = |line: &str| Err(format!("cannot tell which cargo command `{line}` runs"));
    for (script, expected) in [
        (
            "# cargo test is run below\nstep \"format\"\ncargo fmt --all --check\n",
            Ok(vec!["cargo fmt --all --check"]),
        ),
        (
            &format!("{setup}timeout 600 cargo xtask e2e --seconds 20\ncargo nextest run  # all\n"),
            Ok(vec!["cargo xtask e2e --seconds 20", "cargo nextest run"]),
        ),
        ("export CARGO_TERM_COLOR=never\necho done\n", Ok(vec![])),
        (
            "cargo build && cargo test\n",
            cannot("cargo build && cargo test"),
        ),
        (
            "if cargo doc; then echo ok; fi\n",
            cannot("if cargo doc; then echo ok; fi"),
        ),
        ("time cargo test\n", cannot("time cargo test")),
        // Quoted, cargo is still cargo, and a step.
        (
            "\"cargo\" build --locked\n'cargo' test\n",
            Ok(vec!["cargo build --locked", "cargo test"]),
        ),
        // A substitution runs its command too.
        (
            "dir=$(cargo metadata --format-version 1)\n",
            cannot("dir=$(cargo metadata --format-version 1)"),
        ),
        (
            "echo \"built: `cargo build`\"\n",
            cannot("echo \"built: `cargo build`\""),
        ),
        ("v=\"$(cargo --version)\"\n", Ok(vec![])),
        // A substitution in a step's words is no other step.
        (
            "cargo run -- demo \"$(mktemp -d)/demo\"\n",
            Ok(vec!["cargo run -- demo $(…)/demo"]),
        ),
        // Tool setup chained after another command is still setup; a step
        // chained after it is not hidden by it.
        (
            "apt-get update && cargo install cargo-nextest --locked\n",
            Ok(vec![]),
        ),
        (
            "cargo install cargo-fuzz && cargo build\n",
            cannot("cargo install cargo-fuzz && cargo build"),
        ),
        ("true || cargo test\n", cannot("true || cargo test")),
        // Behind another command or a variable, cargo cannot be told apart.
        ("bash -c 'cargo test'\n", cannot("bash -c 'cargo test'")),
        ("\"$CARGO\" test\n", cannot("\"$CARGO\" test")),
        ("(cargo test)\n", cannot("(cargo test)")),
        // A `#` in quotes is no comment; the comment after it is.
        (
            "echo 'a # b' && cargo test # the tests\n",
            cannot("echo 'a # b' && cargo test"),
        ),
        // A continuation is one line.
        (
            "cargo build \\\n  --locked\n",
            Ok(vec!["cargo build --locked"]),
        ),
        // Names that only contain the word run no cargo.
        (
            "cp .cargo/config.toml /tmp\nwhich cargo-nextest\n",
            Ok(vec![]),
        ),
        (
            "cargo test 'oops\n",
            Err("the script ends inside a '-quoted string".to_owned()),
        ),
    ] {
        let expected = expected
            .map(|v| v.into_iter().map(str::to_owned).collect::<Vec<_>>())
            .map_err(|e| e.to_owned());
        assert_eq!(cargo_steps(script), expected, "{script}");
    }
}

#[test]
fn cargo_xtask_ci_runs_the_cargo_commands_of_ci_run_in_the_same_order() {
    let ci_run = cargo_steps(&read(".ci/run")).unwrap_or_else(|e| panic!(".ci/run: {e}"));
    let xtask: Vec<String> = ci_steps::STEPS
        .iter()
        .map(|step| ci_steps::command_line(step))
        .collect();
    assert_eq!(
        xtask, ci_run,
        "`cargo xtask ci` (xtask/src/ci_steps.rs, left) and .ci/run (right) must run the same cargo commands in the same order"
    );
}

#[test]
fn architecture_names_every_crate() {
    let arch = read("ARCHITECTURE.md");
    for entry in std::fs::read_dir(repo_root().join("crates")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            arch.contains(&format!("### crates/{name} ")),
            "ARCHITECTURE.md has no section for crates/{name}"
        );
    }
}

#[test]
fn every_dependency_version_lives_in_the_workspace_manifest() {
    let mut manifests = vec![
        "xtask/Cargo.toml".to_owned(),
        "tests/Cargo.toml".to_owned(),
        "examples/notes-server/Cargo.toml".to_owned(),
    ];
    for entry in std::fs::read_dir(repo_root().join("crates")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        manifests.push(format!("crates/{name}/Cargo.toml"));
    }
    for m in manifests {
        let text = read(&m);
        assert!(
            text.contains("[lints]\nworkspace = true"),
            "{m}: lints not inherited"
        );
        let mut in_deps = false;
        for line in text.lines() {
            if line.starts_with('[') {
                in_deps = line.contains("dependencies");
                continue;
            }
            if in_deps && line.contains('=') && !line.trim_start().starts_with('#') {
                assert!(
                    line.contains(".workspace = true") || line.contains("workspace = true"),
                    "{m}: `{line}` declares its own version"
                );
            }
        }
        if m.starts_with("crates/") {
            assert!(
                text.contains("name = \"sauve-"),
                "{m}: package is not named sauve-<folder>"
            );
        }
    }
}

/// The versions of `name` that a lock file holds.
fn locked_versions(lock: &str, name: &str) -> Vec<String> {
    let line = format!("name = \"{name}\"");
    lock.split("[[package]]\n")
        .filter_map(|p| {
            let mut lines = p.lines();
            (lines.next() == Some(line.as_str())).then(|| lines.next())?
        })
        .map(str::to_owned)
        .collect()
}

/// One version each of reqwest, quick-xml and sha2 (issue 28): a second
/// one is as many crates again for every build to compile. (toml has two
/// and cannot have fewer: age 0.12 -> i18n-embed-fl 0.10 -> find-crate 0.6
/// -> toml 0.5, beside sauve.toml's toml 1.)
#[test]
fn the_lock_files_hold_one_version_of_reqwest_quick_xml_and_sha2() {
    for file in ["Cargo.lock", "fuzz/Cargo.lock"] {
        let lock = read(file);
        for (name, how) in [
            (
                "reqwest",
                "take the version object_store depends on, in the root Cargo.toml",
            ),
            (
                "quick-xml",
                "take the version object_store depends on, in the root Cargo.toml",
            ),
            (
                "sha2",
                "rust-embed 8.12 and later (age's localisation) take sha2 0.11 while age takes 0.10: \
                 keep rust-embed, rust-embed-impl and rust-embed-utils at 8.11.0 \
                 (`cargo update -p rust-embed --precise 8.11.0`, the same for the other two, \
                 and with `--manifest-path fuzz/Cargo.toml`) until age and rust-embed agree",
            ),
        ] {
            let versions = locked_versions(&lock, name);
            assert_eq!(
                versions.len(),
                1,
                "{file}: {name} is locked at {versions:?}, one version is expected: {how}"
            );
        }
    }
}

/// Every file git tracks in the repository, as `git ls-files` names them.
fn tracked_files() -> Vec<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo_root())
        .args(["ls-files", "-z"])
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git ls-files: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("tracked names are UTF-8")
        .split('\0')
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn real_4d_fixtures_live_in_the_repository_with_their_sources() {
    let folder = "tests/fixtures/4d-samples";
    let sources = read(&format!("{folder}/SOURCES.md"));
    let tracked = tracked_files();
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join(folder))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "SOURCES.md")
        .collect();
    names.sort();
    assert!(names.len() >= 4, "{names:?}");
    for name in names {
        assert!(
            tracked.contains(&format!("{folder}/{name}")),
            "{folder}/{name} is not tracked by git"
        );
        assert!(
            sources
                .lines()
                .any(|l| l.starts_with(&format!("| {name} |"))),
            "{folder}/SOURCES.md does not say where {name} comes from"
        );
    }
}

#[test]
fn no_tracked_file_refers_to_the_shared_folder_outside_the_repository() {
    // Built from two parts, so that this file does not name it.
    let needle = concat!("..", "/shared").as_bytes();
    let mut found = Vec::new();
    for name in tracked_files() {
        // A file deleted in the working tree but still tracked has nothing to say.
        let Ok(bytes) = std::fs::read(repo_root().join(&name)) else {
            continue;
        };
        if bytes.windows(needle.len()).any(|w| w == needle) {
            found.push(name);
        }
    }
    assert!(
        found.is_empty(),
        "these tracked files refer to {} outside the repository: {found:?}",
        String::from_utf8_lossy(needle)
    );
}

#[test]
fn the_behaviour_spec_is_cited_by_its_name_in_the_repository() {
    // Citations read "behaviour \u{a7}N" (docs/behaviour.md); the old
    // form named a document outside the repository. Built from two parts,
    // so that this file does not match.
    let old = concat!("SP", "EC ");
    let mut found = Vec::new();
    for name in tracked_files() {
        if !(name.ends_with(".rs") || name.ends_with(".md")) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(repo_root().join(&name)) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let cites = line.match_indices(old).any(|(at, _)| {
                let rest = &line[at + old.len()..];
                rest.starts_with(|c: char| c.is_ascii_digit())
                    || rest.starts_with("section")
                    || rest.starts_with('\u{a7}')
            });
            if cites {
                found.push(format!("{name}:{}", i + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "cite docs/behaviour.md as \"behaviour \u{a7}N\": {found:?}"
    );
}

/// The section numbers cited with the section sign (U+00A7) in `text`: 21,
/// 6.1, or 5 when a space comes between, each with its 1-based line; a
/// sign without a number gives an empty one.
fn section_citations(text: &str) -> Vec<(usize, String)> {
    let mut cited = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for (at, _) in line.match_indices('\u{a7}') {
            let rest = line[at + '\u{a7}'.len_utf8()..].trim_start();
            let mut number = String::new();
            for c in rest.chars() {
                let after_dot = number.ends_with('.');
                if c.is_ascii_digit() || (c == '.' && !number.is_empty() && !after_dot) {
                    number.push(c);
                } else {
                    break;
                }
            }
            // A sentence may end right after the number: "§6.1.".
            while number.ends_with('.') {
                number.pop();
            }
            cited.push((i + 1, number));
        }
    }
    cited
}

/// The numbered headings of docs/behaviour.md (`## 21. …` is "21",
/// `### 6.1 …` is "6.1"), each checked to carry its anchor `sN` on the line
/// before it.
fn behaviour_sections() -> Vec<String> {
    let text = read("docs/behaviour.md");
    let lines: Vec<&str> = text.lines().collect();
    let mut sections = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(title) = line.strip_prefix("##") else {
            continue;
        };
        let title = title.trim_start_matches('#').trim_start();
        let number: String = title
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let number = number.trim_end_matches('.').to_owned();
        if number.is_empty() {
            continue;
        }
        let anchor = format!("<a id=\"s{number}\"></a>");
        assert!(
            i > 0 && lines[i - 1].trim() == anchor,
            "docs/behaviour.md:{}: the heading of section {number} is not preceded by {anchor}",
            i + 1
        );
        assert!(
            !sections.contains(&number),
            "docs/behaviour.md: section {number} appears twice"
        );
        sections.push(number);
    }
    sections
}

#[test]
fn section_citations_are_read_with_their_numbers() {
    let text = "cites \u{a7}21 and \u{a7}6.1.\n(behaviour \u{a7}5 step 1, \u{a7} 13.3)\na lone \u{a7} here";
    assert_eq!(
        section_citations(text),
        [
            (1, "21".to_owned()),
            (1, "6.1".to_owned()),
            (2, "5".to_owned()),
            (2, "13.3".to_owned()),
            (3, String::new()),
        ]
    );
}

#[test]
fn every_section_citation_names_a_section_of_docs_behaviour_md() {
    let sections = behaviour_sections();
    for number in ["1", "5", "6.1", "8.2", "21"] {
        assert!(
            sections.iter().any(|s| s == number),
            "docs/behaviour.md has no section {number}: {sections:?}"
        );
    }
    let mut dangling = Vec::new();
    for name in tracked_files() {
        if !(name.ends_with(".rs") || name.ends_with(".md")) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(repo_root().join(&name)) else {
            continue;
        };
        for (line, number) in section_citations(&text) {
            if !sections.contains(&number) {
                dangling.push(format!("{name}:{line}: \u{a7}{number}"));
            }
        }
    }
    assert!(
        dangling.is_empty(),
        "these citations name no section of docs/behaviour.md: {dangling:#?}"
    );
}

#[test]
fn the_readme_sample_app_has_valid_settings() {
    let app = repo_root().join("tests/fixtures/sample-app");
    let effective = sauve_settings::load_effective(&app).unwrap();
    assert!(effective.warnings.is_empty());
    assert!(effective.source.path().is_some());
    let layout = sauve_settings::AppLayout::discover(&app).unwrap();
    assert_eq!(layout.base_name(), "Sample");
}

#[test]
fn architecture_places_every_engine_actor_and_its_messages() {
    let architecture = read("ARCHITECTURE.md");
    let actors = repo_root().join("crates/engine/src/actors");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&actors).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        // Each actor has its messages in a file of their own.
        let messages = std::fs::read_to_string(entry.path().join("messages.rs"))
            .unwrap_or_else(|e| panic!("actor {name} has no messages.rs: {e}"));
        // Every message it takes (a struct right under its `#[rtype]`) is
        // named in the codemap's table.
        let lines: Vec<&str> = messages.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(rest) = line.strip_prefix("pub(crate) struct ") else {
                continue;
            };
            let msg: String = rest.chars().take_while(|c| c.is_alphanumeric()).collect();
            if i > 0 && lines[i - 1].starts_with("#[rtype") {
                assert!(
                    architecture.contains(&format!("`{msg}`")),
                    "ARCHITECTURE.md does not name the message {msg} of the {name} actor"
                );
            }
        }
        found.push(name);
    }
    found.sort();
    assert_eq!(
        found,
        [
            "alerts",
            "coordinator",
            "copier",
            "history",
            "journal",
            "locks",
            "offsite",
            "resolver",
            "state"
        ]
    );
}
