//! `sh` and `bash` blocks: the body run by that shell with `-eu` (bash
//! adds `pipefail`); the step must end with its `exit=`, and print what an
//! `expect` block after it says.

use std::ffi::OsString;

use crate::matcher::Captures;
use crate::model::{ExpectedExit, Step};
use crate::process::Exit;
use crate::runner::step::Prepared;
use crate::runner::verdict::{expected_output, passed, Ran, Verdict};

/// The shell named by the block's syntax, with the body as its script.
pub fn prepare(step: &Step) -> Prepared {
    let os = |s: &str| OsString::from(s);
    let mut args = vec![os("-eu")];
    if step.syntax == "bash" {
        args.extend([os("-o"), os("pipefail")]);
    }
    args.extend([os("-c"), os(&step.body)]);
    Prepared::new(step, &step.syntax, args, None, step.body.clone())
}

/// Whether a program (a script, or a rust step) ended as `exit` says, and
/// then printed what the `expect` block after it holds, if there is one.
pub fn judge(ran: &Ran, exit: ExpectedExit, bless: bool) -> Verdict {
    let ok = match exit {
        ExpectedExit::Any => !matches!(ran.exit, Exit::Signal(_)),
        ExpectedExit::Code(c) => ran.exit == Exit::Code(c),
    };
    if !ok {
        let want = match exit {
            ExpectedExit::Any => "any exit code".to_string(),
            ExpectedExit::Code(c) => format!("exit code {c}"),
        };
        let message = format!("ended with {}, expected {want}", ran.exit);
        return Err(ran.error(message, None, None));
    }
    match ran.expect {
        Some(expect) => expected_output(ran, expect, 1, bless),
        None => passed(Captures::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Action;
    use crate::runner::kinds::cases::{line, ran, step};

    /// A row: its name, the expected exit, how the script ended, what it
    /// printed, the `expect` block after it, `--bless`, and the verdict.
    type Row = (
        &'static str,
        ExpectedExit,
        Exit,
        &'static str,
        Option<&'static str>,
        bool,
        &'static str,
    );

    #[test]
    fn judge_exit_codes_then_the_expect_block() {
        let (code, any) = (ExpectedExit::Code, ExpectedExit::Any);
        let (ok, failed) = (Exit::Code(0), Exit::Code(1));
        let rows: &[Row] = &[
            ("ends with 0", code(0), ok, "", None, false, "passed"),
            ("ends with 1", code(0), failed, "", None, false,
                "Failed at 1 `cmd`: ended with exit code 1, expected exit code 0"),
            ("ends with its exit=", code(3), Exit::Code(3), "", None, false, "passed"),
            ("bless does not fix an exit code", code(3), ok, "", None, true,
                "Failed at 1 `cmd`: ended with exit code 0, expected exit code 3"),
            ("exit=any, any code", any, Exit::Code(7), "", None, false, "passed"),
            ("exit=any, not a signal", any, Exit::Signal(9), "", None, false,
                "Failed at 1 `cmd`: ended with signal SIGKILL, expected any exit code"),
            ("prints its expect block", code(0), ok, "hello\n", Some("hello\n"), false, "passed"),
            ("captures", code(0), ok, "port 8080\n", Some("port [INT:port]\n"), false,
                "passed port=8080"),
            ("prints something else", code(0), ok, "hello\n", Some("bye\n"), false,
                "Failed at 4 `cmd`: output differs from the expected output"),
            ("blessed into its expect block", code(0), ok, "hello\n[IP]\n", Some("bye\n"), true,
                "blessed +1 \"hello\\n[IP] (literal)\\n\""),
            ("blessing keeps the lines that match", code(0), ok, "id 12\nnew\n",
                Some("id [INT:id]\nold\n"), true, "blessed +1 \"id [INT:id]\\nnew\\n\" id=12"),
            ("a pattern that does not compile is not blessed", code(0), ok, "x\n",
                Some("[NOPE]\n"), true,
                "Failed at 4 `cmd`: unknown placeholder `[NOPE]` (known: [..], [IP], [MAC], [INT], [HEX], [UUID], [DATE], [DURATION]; end the line with ` (literal)` to match it as plain text)"),
            ("the exit code comes first", code(0), failed, "bye\n", Some("bye\n"), true,
                "Failed at 1 `cmd`: ended with exit code 1, expected exit code 0"),
        ];
        for &(row, exit, ended, output, expect, bless, want) in rows {
            let script = step(1, Action::Script { exit }, "true\n");
            let expect = expect.map(|body| step(4, Action::Expect, body));
            let bound = Captures::new();
            let ran = Ran {
                expect: expect.as_ref(),
                ..ran(&script, ended, output, &bound)
            };
            assert_eq!(line(&judge(&ran, exit, bless)), want, "row `{row}`");
        }
    }

    #[test]
    fn prepare_runs_the_body_with_its_shell() {
        let mut bash = step(
            1,
            Action::Script {
                exit: ExpectedExit::Code(0),
            },
            "echo hi\n",
        );
        bash.syntax = "bash".into();
        let prepared = prepare(&bash);
        assert_eq!(prepared.program.program, "bash");
        assert_eq!(
            prepared.program.args,
            ["-eu", "-o", "pipefail", "-c", "echo hi\n"]
        );
        assert_eq!(prepared.command, "echo hi\n");
        bash.syntax = "sh".into();
        assert_eq!(prepare(&bash).program.args, ["-eu", "-c", "echo hi\n"]);
    }
}
