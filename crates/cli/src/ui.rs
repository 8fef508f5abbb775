//! `sauve ui`: a one-time login link to the backup page of a running
//! `sauve run` (behaviour §18), and `sauve ui --hash-password` for
//! `[ui] password_hash`.

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use crate::report::{Failure, Io};

/// Asks the app's server for a one-time code and prints the link.
pub(crate) fn link(app: &Path, open: bool, io: &mut Io<'_>) -> Result<(), Failure> {
    let app = crate::settings::app_dir(app)?;
    let Some(server) = crate::remote::live_server(&app) else {
        return Err(Failure::failed(format!(
            "no sauve server answers for {} (start one with `sauve run --app {}`)",
            app.display(),
            app.display()
        )));
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let base = server.url.trim_end_matches('/');
    let mut resp = agent
        .post(format!("{base}/login/code"))
        .header("Authorization", format!("Bearer {}", server.token))
        .send_empty()
        .map_err(|e| Failure::failed(format!("cannot reach {base}: {e}")))?;
    let code = resp.status();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let Some(path) = v["path"].as_str().filter(|_| code.is_success()) else {
        return Err(Failure::failed(format!(
            "{base} did not give a login code ({code}): {}",
            v["error"].as_str().unwrap_or(&body)
        )));
    };
    let url = format!("{base}{path}");
    io.out(&format!("{url}\n"));
    io.err(&format!(
        "This link logs in once, within {} seconds. The page is {base}/\n",
        v["valid_seconds"].as_u64().unwrap_or(60)
    ));
    if open && has_display() {
        match std::process::Command::new(opener())
            .arg(&url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            Ok(_) => io.err("Opening it in your browser.\n"),
            Err(e) => io.err(&format!(
                "Could not open a browser ({e}); open the link yourself.\n"
            )),
        }
    }
    Ok(())
}

/// Whether a browser can be shown here: a graphical session.
fn has_display() -> bool {
    cfg!(target_os = "macos")
        || ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

fn opener() -> &'static str {
    if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    }
}

/// Reads a password on stdin and prints its argon2id hash (PHC string).
pub(crate) fn hash_password(io: &mut Io<'_>) -> Result<(), Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::failed(format!("cannot read the password on stdin: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.chars().count() < 12 {
        return Err(Failure::usage(
            "the password is too short (accepted: at least 12 characters, given on stdin)",
        ));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| Failure::failed(format!("no random numbers for the salt: {e}")))?;
    let salt = argon2::password_hash::SaltString::encode_b64(&salt)
        .map_err(|e| Failure::failed(format!("cannot encode the salt: {e}")))?;
    let hash = argon2::PasswordHasher::hash_password(
        &argon2::Argon2::default(),
        password.as_bytes(),
        &salt,
    )
    .map_err(|e| Failure::failed(format!("cannot hash the password: {e}")))?;
    io.out(&format!("{hash}\n"));
    io.err("Put it in sauve.toml:\n  [ui]\n  password_hash = \"<the line above>\"\n");
    Ok(())
}
