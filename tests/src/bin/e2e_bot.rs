//! A bot's outbound side, reduced to one token: the program the end-to-end tests run unchanged
//! under different environments. Prints one JSON line: the credential kind, the dialect and the
//! token (the tests verify it against the sandbox; a real bot never prints its token).
#![allow(clippy::print_stdout)]

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let result = async {
        let auth = botauth::BotAuth::from_env()?;
        let token = auth.connector_token().await?;
        Ok::<_, botauth::Error>(format!(
            r#"{{"credential":"{}","dialect":"{}","access_token":"{}"}}"#,
            auth.tokens().credential().kind,
            auth.config().dialect,
            token.token.expose_secret()
        ))
    }
    .await;
    match result {
        Ok(line) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("e2e-bot: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
