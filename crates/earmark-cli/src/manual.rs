//! The command's own documentation: `--help` with its commands grouped in
//! the order of the work, and one manual page per command, each ending in
//! the exit codes from [`crate::exit::TABLE`].

use std::path::Path;

use clap::CommandFactory;

use crate::exit::{self, Failure};

/// The commands by group, in the order of the work: set up, recipients,
/// mark and trace, transcripts, records, measuring, key-file tools, shell.
pub const GROUPS: &[(&str, &[&str])] = &[
    ("Set up", &["init"]),
    ("Recipients", &["recipient"]),
    ("Mark and trace", &["mark", "trace", "work"]),
    ("Transcripts", &["text"]),
    ("Records", &["audit", "backup", "restore"]),
    (
        "Team service",
        &["serve", "worker", "user", "token", "link"],
    ),
    ("Measure", &["bench"]),
    ("Key-file tools (no home)", &["keygen", "embed", "extract"]),
    ("Shell", &["completions", "man", "help"]),
];

/// The command line as parsed and shown: the derived definition, with the
/// top help listing its commands by [`GROUPS`].
pub fn command() -> clap::Command {
    let command = crate::Cli::command();
    let width = command
        .get_subcommands()
        .map(|s| s.get_name().len())
        .max()
        .unwrap_or(0)
        .max("help".len());
    let mut commands = String::new();
    for (heading, names) in GROUPS {
        commands.push_str(&format!("{heading}:\n"));
        for name in *names {
            let about = match *name {
                "help" => "Print this message or the help of the given command".to_string(),
                _ => command
                    .find_subcommand(name)
                    .and_then(|s| s.get_about())
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
            };
            commands.push_str(&format!("  {name:<width$}  {about}\n"));
        }
        commands.push('\n');
    }
    command.help_template(format!(
        "{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{commands}Global options:\n{{options}}\n{{after-help}}"
    ))
}

/// `earmark man`: the top page on standard output, or with `dir` one page
/// per command (`earmark.1`, `earmark-trace.1`, `earmark-recipient-add.1`
/// …) written there, each created new.
pub fn man(dir: Option<&Path>) -> Result<Vec<String>, Failure> {
    // Pages have no `help` commands: each has its own page instead.
    let mut top = without_help_commands(crate::Cli::command());
    top.build();
    let mut pages = Vec::new();
    collect(&top, "earmark", &mut pages);
    match dir {
        None => {
            let (_, page) = pages.swap_remove(0);
            out!("{page}");
            Ok(vec![])
        }
        Some(dir) => {
            if !dir.is_dir() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Failure::write(format!("cannot create {}: {e}", dir.display())))?;
            }
            let mut written = Vec::new();
            for (name, page) in pages {
                let path = dir.join(format!("{name}.1"));
                let mut file = earmark::create_output_file(&path, None)?;
                std::io::Write::write_all(&mut file, page.as_bytes())
                    .map_err(|e| Failure::write(format!("{}: {e}", path.display())))?;
                written.push(path.display().to_string());
            }
            Ok(written)
        }
    }
}

fn without_help_commands(command: clap::Command) -> clap::Command {
    command
        .disable_help_subcommand(true)
        .mut_subcommands(without_help_commands)
}

/// `command`'s page under `name`, then its subcommands' pages, depth first.
fn collect(command: &clap::Command, name: &str, pages: &mut Vec<(String, String)>) {
    pages.push((name.to_string(), page(command, name)));
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        collect(sub, &format!("{name}-{}", sub.get_name()), pages);
    }
}

/// One manual page: clap's sections but the free-form one, then EXIT STATUS.
fn page(command: &clap::Command, name: &str) -> String {
    let man = clap_mangen::Man::new(command.clone().display_name(name.to_string()))
        .title(name.to_string())
        .source(format!("earmark {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    let rendered = man
        .render_title(&mut out)
        .and_then(|()| man.render_name_section(&mut out))
        .and_then(|()| man.render_synopsis_section(&mut out))
        .and_then(|()| man.render_description_section(&mut out))
        .and_then(|()| man.render_options_section(&mut out))
        .and_then(|()| {
            if command.has_subcommands() {
                man.render_subcommands_section(&mut out)
            } else {
                Ok(())
            }
        });
    rendered.expect("rendering into memory cannot fail");
    let mut page = String::from_utf8_lossy(&out).into_owned();
    page.push_str(".SH \"EXIT STATUS\"\n");
    for status in exit::TABLE {
        page.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            status.code,
            roff_text(status.meaning)
        ));
    }
    page
}

/// `text` as a roff text line: backslashes doubled, and a leading dot or
/// quote kept from reading as a request.
fn roff_text(text: &str) -> String {
    let text = text.replace('\\', "\\\\");
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command is in exactly one group, and every group's command
    /// exists.
    #[test]
    fn every_command_is_in_one_group() {
        let command = crate::Cli::command();
        let listed: Vec<&str> = GROUPS
            .iter()
            .flat_map(|(_, names)| names.iter().copied())
            .collect();
        for sub in command.get_subcommands() {
            let n = listed.iter().filter(|&&l| l == sub.get_name()).count();
            assert_eq!(n, 1, "{}", sub.get_name());
        }
        for name in listed {
            assert!(
                name == "help" || command.find_subcommand(name).is_some(),
                "{name}"
            );
        }
    }
}
