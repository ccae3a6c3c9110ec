//! Property tests: every top-level message survives encode -> decode
//! unchanged, and the encoding is canonical (decode -> encode gives the same
//! bytes). Strategies cover every field, including unknown enum values and
//! unknown capability/flag bits.

use std::collections::BTreeMap;

use opamp_proto::generated::*;
use opamp_proto::{Bytes, Message, any_value, server_error_response};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

fn bytes() -> BoxedStrategy<Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from).boxed()
}

fn text() -> BoxedStrategy<String> {
    // Mostly short ASCII, sometimes any Unicode.
    prop_oneof![4 => "[a-z0-9._/-]{0,12}", 1 => any::<String>()].boxed()
}

fn map_of<T: std::fmt::Debug>(
    value: impl Strategy<Value = T>,
    max: usize,
) -> impl Strategy<Value = BTreeMap<String, T>> {
    btree_map(text(), value, 0..max)
}

/// Any double except NaN (NaN != NaN would break the equality check).
fn double() -> BoxedStrategy<f64> {
    use proptest::num::f64::{INFINITE, NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    (POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO | INFINITE).boxed()
}

/// Enum fields are open: any i32, weighted towards small values.
fn enum_value() -> BoxedStrategy<i32> {
    prop_oneof![3 => 0..5i32, 1 => any::<i32>()].boxed()
}

fn any_value() -> BoxedStrategy<AnyValue> {
    use any_value::Value as V;
    let leaf = prop_oneof![
        Just(None),
        text().prop_map(|s| Some(V::StringValue(s))),
        any::<bool>().prop_map(|b| Some(V::BoolValue(b))),
        any::<i64>().prop_map(|i| Some(V::IntValue(i))),
        double().prop_map(|d| Some(V::DoubleValue(d))),
        bytes().prop_map(|b| Some(V::BytesValue(b))),
    ]
    .prop_map(|value| AnyValue { value });
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|values| AnyValue {
                value: Some(V::ArrayValue(ArrayValue { values })),
            }),
            vec((text(), option::of(inner)), 0..4).prop_map(|pairs| AnyValue {
                value: Some(V::KvlistValue(KeyValueList {
                    values: pairs
                        .into_iter()
                        .map(|(key, value)| KeyValue { key, value })
                        .collect(),
                })),
            }),
        ]
    })
    .boxed()
}

fn key_values() -> BoxedStrategy<Vec<KeyValue>> {
    vec(
        (text(), option::of(any_value())).prop_map(|(key, value)| KeyValue { key, value }),
        0..4,
    )
    .boxed()
}

fn agent_description() -> BoxedStrategy<AgentDescription> {
    (key_values(), key_values())
        .prop_map(
            |(identifying_attributes, non_identifying_attributes)| AgentDescription {
                identifying_attributes,
                non_identifying_attributes,
            },
        )
        .boxed()
}

fn component_health() -> BoxedStrategy<ComponentHealth> {
    let node = || {
        (
            any::<bool>(),
            any::<u64>(),
            text(),
            text(),
            any::<u64>(),
            key_values(),
        )
    };
    let leaf =
        node().prop_map(
            |(healthy, start, last_error, status, time, attributes)| ComponentHealth {
                healthy,
                start_time_unix_nano: start,
                last_error,
                status,
                status_time_unix_nano: time,
                component_health_map: BTreeMap::new(),
                attributes,
            },
        );
    leaf.prop_recursive(3, 12, 3, move |inner| {
        (node(), map_of(inner, 3)).prop_map(
            |((healthy, start, last_error, status, time, attributes), component_health_map)| {
                ComponentHealth {
                    healthy,
                    start_time_unix_nano: start,
                    last_error,
                    status,
                    status_time_unix_nano: time,
                    component_health_map,
                    attributes,
                }
            },
        )
    })
    .boxed()
}

fn component_details() -> BoxedStrategy<ComponentDetails> {
    let leaf = key_values().prop_map(|metadata| ComponentDetails {
        metadata,
        sub_component_map: BTreeMap::new(),
    });
    leaf.prop_recursive(3, 12, 3, |inner| {
        (key_values(), map_of(inner, 3)).prop_map(|(metadata, sub_component_map)| {
            ComponentDetails {
                metadata,
                sub_component_map,
            }
        })
    })
    .boxed()
}

fn config_map() -> BoxedStrategy<AgentConfigMap> {
    map_of(
        (bytes(), text()).prop_map(|(body, content_type)| AgentConfigFile { body, content_type }),
        3,
    )
    .prop_map(|config_map| AgentConfigMap { config_map })
    .boxed()
}

fn custom_capabilities() -> BoxedStrategy<CustomCapabilities> {
    vec(text(), 0..3)
        .prop_map(|capabilities| CustomCapabilities { capabilities })
        .boxed()
}

fn custom_message() -> BoxedStrategy<CustomMessage> {
    (text(), text(), bytes())
        .prop_map(|(capability, r#type, data)| CustomMessage {
            capability,
            r#type,
            data,
        })
        .boxed()
}

fn package_statuses() -> BoxedStrategy<PackageStatuses> {
    let details = (double(), double()).prop_map(|(download_percent, download_bytes_per_second)| {
        PackageDownloadDetails {
            download_percent,
            download_bytes_per_second,
        }
    });
    let status = (
        text(),
        text(),
        bytes(),
        text(),
        bytes(),
        enum_value(),
        text(),
        option::of(details),
    )
        .prop_map(
            |(name, ahv, ahh, sov, soh, status, error_message, download_details)| PackageStatus {
                name,
                agent_has_version: ahv,
                agent_has_hash: ahh,
                server_offered_version: sov,
                server_offered_hash: soh,
                status,
                error_message,
                download_details,
            },
        );
    (map_of(status, 3), bytes(), text())
        .prop_map(|(packages, hash, error_message)| PackageStatuses {
            packages,
            server_provided_all_packages_hash: hash,
            error_message,
        })
        .boxed()
}

fn agent_to_server() -> BoxedStrategy<AgentToServer> {
    let ids = (bytes(), any::<u64>(), any::<u64>(), any::<u64>());
    let status =
        (
            option::of(agent_description()),
            option::of(component_health()),
            option::of(config_map().prop_map(|m| EffectiveConfig {
                config_map: Some(m),
            })),
            option::of((bytes(), enum_value(), text()).prop_map(
                |(hash, status, error_message)| RemoteConfigStatus {
                    last_remote_config_hash: hash,
                    status,
                    error_message,
                },
            )),
            option::of(package_statuses()),
            any::<bool>(),
        );
    let extra =
        (
            option::of(option::of(option::of(bytes()))),
            option::of(custom_capabilities()),
            option::of(custom_message()),
            option::of(
                (map_of(component_details(), 3), bytes())
                    .prop_map(|(components, hash)| AvailableComponents { components, hash }),
            ),
            option::of((bytes(), enum_value(), text()).prop_map(
                |(hash, status, error_message)| ConnectionSettingsStatus {
                    last_connection_settings_hash: hash,
                    status,
                    error_message,
                },
            )),
        );
    (ids, status, extra)
        .prop_map(
            |(
                (instance_uid, sequence_num, capabilities, flags),
                (
                    agent_description,
                    health,
                    effective_config,
                    remote_config_status,
                    package_statuses,
                    disconnect,
                ),
                (csr, custom_capabilities, custom_message, available_components, cs_status),
            )| AgentToServer {
                instance_uid,
                sequence_num,
                agent_description,
                capabilities,
                health,
                effective_config,
                remote_config_status,
                package_statuses,
                agent_disconnect: disconnect.then_some(AgentDisconnect {}),
                flags,
                connection_settings_request: csr.map(|opamp| ConnectionSettingsRequest {
                    opamp: opamp.map(|request| OpAmpConnectionSettingsRequest {
                        certificate_request: request.map(|csr| CertificateRequest { csr }),
                    }),
                }),
                custom_capabilities,
                custom_message,
                available_components,
                connection_settings_status: cs_status,
            },
        )
        .boxed()
}

fn headers() -> BoxedStrategy<Headers> {
    vec(
        (text(), text()).prop_map(|(key, value)| Header { key, value }),
        0..3,
    )
    .prop_map(|headers| Headers { headers })
    .boxed()
}

fn certificate() -> BoxedStrategy<TlsCertificate> {
    (bytes(), bytes(), bytes())
        .prop_map(|(cert, private_key, ca_cert)| TlsCertificate {
            cert,
            private_key,
            ca_cert,
        })
        .boxed()
}

fn tls() -> BoxedStrategy<TlsConnectionSettings> {
    (
        text(),
        any::<bool>(),
        any::<bool>(),
        text(),
        text(),
        vec(text(), 0..3),
    )
        .prop_map(
            |(ca, system, insecure, min_version, max_version, cipher_suites)| {
                TlsConnectionSettings {
                    ca_pem_contents: ca,
                    include_system_ca_certs_pool: system,
                    insecure_skip_verify: insecure,
                    min_version,
                    max_version,
                    cipher_suites,
                }
            },
        )
        .boxed()
}

fn proxy() -> BoxedStrategy<ProxyConnectionSettings> {
    (text(), option::of(headers()))
        .prop_map(|(url, connect_headers)| ProxyConnectionSettings {
            url,
            connect_headers,
        })
        .boxed()
}

fn telemetry() -> BoxedStrategy<TelemetryConnectionSettings> {
    (
        text(),
        option::of(headers()),
        option::of(certificate()),
        option::of(tls()),
        option::of(proxy()),
    )
        .prop_map(|(destination_endpoint, headers, certificate, tls, proxy)| {
            TelemetryConnectionSettings {
                destination_endpoint,
                headers,
                certificate,
                tls,
                proxy,
            }
        })
        .boxed()
}

fn connection_settings() -> BoxedStrategy<ConnectionSettingsOffers> {
    let opamp = (
        text(),
        option::of(headers()),
        option::of(certificate()),
        any::<u64>(),
        option::of(tls()),
        option::of(proxy()),
    )
        .prop_map(
            |(destination_endpoint, headers, certificate, heartbeat, tls, proxy)| {
                OpAmpConnectionSettings {
                    destination_endpoint,
                    headers,
                    certificate,
                    heartbeat_interval_seconds: heartbeat,
                    tls,
                    proxy,
                }
            },
        );
    let other = (
        text(),
        option::of(headers()),
        option::of(certificate()),
        map_of(text(), 3),
        option::of(tls()),
        option::of(proxy()),
    )
        .prop_map(
            |(destination_endpoint, headers, certificate, other_settings, tls, proxy)| {
                OtherConnectionSettings {
                    destination_endpoint,
                    headers,
                    certificate,
                    other_settings,
                    tls,
                    proxy,
                }
            },
        );
    (
        bytes(),
        option::of(opamp),
        option::of(telemetry()),
        option::of(telemetry()),
        option::of(telemetry()),
        map_of(other, 3),
    )
        .prop_map(
            |(hash, opamp, own_metrics, own_traces, own_logs, other_connections)| {
                ConnectionSettingsOffers {
                    hash,
                    opamp,
                    own_metrics,
                    own_traces,
                    own_logs,
                    other_connections,
                }
            },
        )
        .boxed()
}

fn packages_available() -> BoxedStrategy<PackagesAvailable> {
    let file = (text(), bytes(), bytes(), option::of(headers())).prop_map(
        |(download_url, content_hash, signature, headers)| DownloadableFile {
            download_url,
            content_hash,
            signature,
            headers,
        },
    );
    let package = (enum_value(), text(), option::of(file), bytes()).prop_map(
        |(r#type, version, file, hash)| PackageAvailable {
            r#type,
            version,
            file,
            hash,
        },
    );
    (map_of(package, 3), bytes())
        .prop_map(|(packages, all_packages_hash)| PackagesAvailable {
            packages,
            all_packages_hash,
        })
        .boxed()
}

fn error_response() -> BoxedStrategy<ServerErrorResponse> {
    let details = option::of(any::<u64>().prop_map(|retry_after_nanoseconds| {
        server_error_response::Details::RetryInfo(RetryInfo {
            retry_after_nanoseconds,
        })
    }));
    (enum_value(), text(), details)
        .prop_map(|(r#type, error_message, details)| ServerErrorResponse {
            r#type,
            error_message,
            details,
        })
        .boxed()
}

fn server_to_agent() -> BoxedStrategy<ServerToAgent> {
    let head = (
        bytes(),
        option::of(error_response()),
        any::<u64>(),
        any::<u64>(),
    );
    let offers = (
        option::of(
            (option::of(config_map()), bytes()).prop_map(|(config, config_hash)| {
                AgentRemoteConfig {
                    config,
                    config_hash,
                }
            }),
        ),
        option::of(connection_settings()),
        option::of(packages_available()),
    );
    let rest = (
        option::of(bytes().prop_map(|new_instance_uid| AgentIdentification { new_instance_uid })),
        option::of(enum_value().prop_map(|r#type| ServerToAgentCommand { r#type })),
        option::of(custom_capabilities()),
        option::of(custom_message()),
    );
    (head, offers, rest)
        .prop_map(
            |(
                (instance_uid, error_response, flags, capabilities),
                (remote_config, connection_settings, packages_available),
                (agent_identification, command, custom_capabilities, custom_message),
            )| ServerToAgent {
                instance_uid,
                error_response,
                remote_config,
                connection_settings,
                packages_available,
                flags,
                capabilities,
                agent_identification,
                command,
                custom_capabilities,
                custom_message,
            },
        )
        .boxed()
}

fn check_round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(
    msg: &M,
) -> Result<(), TestCaseError> {
    let encoded = msg.encode_to_vec();
    prop_assert_eq!(encoded.len(), msg.encoded_len());
    let decoded = M::decode(encoded.as_slice()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&decoded, msg);
    prop_assert_eq!(decoded.encode_to_vec(), encoded, "encoding is canonical");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn agent_to_server_round_trips(msg in agent_to_server()) {
        check_round_trip(&msg)?;
    }

    #[test]
    fn server_to_agent_round_trips(msg in server_to_agent()) {
        check_round_trip(&msg)?;
    }

    /// Length-delimited framing (as a stream would use) also round trips.
    #[test]
    fn length_delimited_round_trips(a in agent_to_server(), s in server_to_agent()) {
        let a_bytes = a.encode_length_delimited_to_vec();
        prop_assert_eq!(AgentToServer::decode_length_delimited(a_bytes.as_slice()).unwrap(), a);
        let s_bytes = s.encode_length_delimited_to_vec();
        prop_assert_eq!(ServerToAgent::decode_length_delimited(s_bytes.as_slice()).unwrap(), s);
    }

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..256)) {
        let _ = AgentToServer::decode(data.as_slice());
        let _ = ServerToAgent::decode(data.as_slice());
    }
}
