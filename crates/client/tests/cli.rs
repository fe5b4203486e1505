//! The `eagate-device` executable: help, usage errors and an unreachable
//! server, as a user sees them (no server needed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

const ID: &str = "3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70";
const SECRET: &str = "eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwx";

fn eagate_device(args: &[&str], secret: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eagate-device"));
    command.env_clear().args(args);
    if let Some(secret) = secret {
        command.env("EAGATE_DEVICE_SECRET", secret);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn help_documents_every_option_including_the_global_ones_on_subcommands() {
    let top = eagate_device(&["--help"], None);
    assert!(top.status.success());
    let top = text(&top.stdout);
    for option in [
        "--server <URL>",
        "--device-id <UUID>",
        "--secret-env <VAR>",
        "[env: EAGATE_SERVER=]",
        "before or after the subcommand",
    ] {
        assert!(top.contains(option), "{option} in:\n{top}");
    }
    let poll = text(&eagate_device(&["poll", "--help"], None).stdout);
    for option in [
        "--server <URL>",
        "--device-id <UUID>",
        "--wait <SECONDS>",
        "--limit <N>",
        "Seconds to wait",
    ] {
        assert!(poll.contains(option), "{option} in:\n{poll}");
    }
    let ack = text(&eagate_device(&["ack", "--help"], None).stdout);
    for option in [
        "<SIGNAL_ID>",
        "executed",
        "rejected",
        "failed",
        "--ticket <N>",
        "--fill-price <PRICE>",
        "--message <TEXT>",
    ] {
        assert!(ack.contains(option), "{option} in:\n{ack}");
    }
}

#[test]
fn a_malformed_secret_is_refused_locally_with_status_2() {
    // --server points nowhere: the check happens before any connection.
    let output = eagate_device(
        &["config", "--server", "http://127.0.0.1:9", "--device-id", ID],
        Some("eags_abc"),
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr),
        "eagate-device: EAGATE_DEVICE_SECRET: the device secret is malformed: it is too short \
         (`eags_` and 43 characters); was it cut off when copied?\n"
    );
    assert_eq!(text(&output.stdout), "");
}

#[test]
fn an_unreachable_server_is_one_line_with_status_1() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = format!("http://127.0.0.1:{port}");
    let output = eagate_device(
        &["heartbeat", "--server", &server, "--device-id", ID],
        Some(SECRET),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "eagate-device: cannot reach the server at {server}: connection refused"
        )),
        "{stderr}"
    );
}
