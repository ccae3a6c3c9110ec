//! Callbacks the Agent implements: the effective configuration is pulled at start and on
//! request, and a restart command reaches `on_command` only with `AcceptsRestartCommand`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Push, TestServer};
use opamp_client::proto::{
    AgentCapabilities, AgentConfigFile, AgentConfigMap, EffectiveConfig, ServerToAgent,
    ServerToAgentCommand,
};
use opamp_client::{CallbackError, Callbacks, Client, ClientSettings};

#[derive(Default)]
struct Agent {
    config: Mutex<String>,
    pulls: AtomicUsize,
    commands: AtomicUsize,
}

fn effective(body: &str) -> EffectiveConfig {
    EffectiveConfig {
        config_map: Some(AgentConfigMap {
            config_map: [(
                String::new(),
                AgentConfigFile {
                    body: body.as_bytes().to_vec().into(),
                    content_type: "text/yaml".into(),
                },
            )]
            .into_iter()
            .collect(),
        }),
    }
}

#[derive(Clone, Default)]
struct Shared(Arc<Agent>);

#[opamp_client::async_trait]
impl Callbacks for Shared {
    async fn get_effective_config(&self) -> Result<Option<EffectiveConfig>, CallbackError> {
        self.0.pulls.fetch_add(1, Ordering::SeqCst);
        Ok(Some(effective(&self.0.config.lock().unwrap())))
    }

    async fn on_command(&self, _command: &ServerToAgentCommand) {
        self.0.commands.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effective_config_is_pulled_at_start_and_on_request() {
    let server = TestServer::start().await;
    let agent = Shared::default();
    *agent.0.config.lock().unwrap() = "receivers: [otlp]".into();
    let client = Client::start(
        ClientSettings::new(server.ws_url())
            .with_capabilities(AgentCapabilities::REPORTS_EFFECTIVE_CONFIG),
        agent.clone(),
    )
    .unwrap();
    let first = server.next_message().await;
    assert_eq!(first.effective_config, Some(effective("receivers: [otlp]")));

    *agent.0.config.lock().unwrap() = "receivers: [otlp, prometheus]".into();
    client.update_effective_config().unwrap();
    let next = server.next_message().await;
    assert_eq!(
        next.effective_config,
        Some(effective("receivers: [otlp, prometheus]"))
    );
    // Pulling the same configuration again sends nothing.
    client.update_effective_config().unwrap();
    server.assert_quiet(Duration::from_millis(400)).await;
    assert_eq!(agent.0.pulls.load(Ordering::SeqCst), 3);
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_effective_config_needs_the_capability() {
    let server = TestServer::start().await;
    let client = Client::start(ClientSettings::new(server.ws_url()), Shared::default()).unwrap();
    assert!(matches!(
        client.update_effective_config(),
        Err(opamp_client::Error::CapabilityNotSet { .. })
    ));
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_command_needs_the_capability() {
    let server = TestServer::start().await;
    let agent = Shared::default();
    let client = Client::start(ClientSettings::new(server.ws_url()), agent.clone()).unwrap();
    server.next_message().await;
    let command = ServerToAgent {
        command: Some(ServerToAgentCommand::default()),
        ..Default::default()
    };
    server.push(Push::Message(command.clone())).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        agent.0.commands.load(Ordering::SeqCst),
        0,
        "ignored without the capability"
    );

    client
        .set_capabilities(AgentCapabilities::ACCEPTS_RESTART_COMMAND)
        .unwrap();
    server.next_message().await;
    server.push(Push::Message(command)).await;
    common::eventually("on_command", || {
        agent.0.commands.load(Ordering::SeqCst) == 1
    })
    .await;
    client.stop().await.unwrap();
}
