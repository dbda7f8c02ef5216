//! The configuration cases of Wazuh's AWS integration suite
//! (`tests/integration/test_aws/data/test_cases/parser_test_module`), read
//! from `../shared/wazuh-aws-tests` and rendered into the suite's
//! templates: every invalid value is refused with its line and tag, every
//! empty value is refused or warned about, and the valid layouts load.

use collector::config::{parse, WodleConfig};
use std::path::{Path, PathBuf};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../shared/wazuh-aws-tests/tests/integration/test_aws/data/test_cases/parser_test_module",
    )
}

/// `(name, [(PLACEHOLDER, value)])` of each case in a case file.
fn read_cases(file: &str) -> Vec<(String, Vec<(String, String)>)> {
    let text = std::fs::read_to_string(cases_dir().join(file)).unwrap();
    let mut cases: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut in_params = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("- name: ") {
            cases.push((name.to_string(), Vec::new()));
            in_params = false;
        } else if t == "configuration_parameters:" {
            in_params = true;
        } else if t.starts_with("metadata:") || t.starts_with("description:") {
            in_params = false;
        } else if in_params {
            if let Some((k, v)) = t.split_once(": ") {
                let v = v.trim().trim_matches('\'').to_string();
                cases.last_mut().unwrap().1.push((k.to_string(), v));
            } else if let Some(k) = t.strip_suffix(':') {
                cases
                    .last_mut()
                    .unwrap()
                    .1
                    .push((k.to_string(), String::new()));
            }
        }
    }
    assert!(!cases.is_empty(), "{file}: no case");
    cases
}

fn escape(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `configuration_values_in_bucket.yaml` as ossec.conf.
const BUCKET: &str = r#"<ossec_config>
  <wodle name="aws-s3">
    <disabled>no</disabled>
    <bucket type="BUCKET_TYPE">
      <name>BUCKET_NAME</name>
      <only_logs_after>ONLY_LOGS_AFTER</only_logs_after>
      <regions>REGIONS</regions>
      <path>PATH</path>
      <path_suffix>PATH_SUFFIX</path_suffix>
      <remove_from_bucket>REMOVE_FROM_BUCKET</remove_from_bucket>
    </bucket>
  </wodle>
</ossec_config>
"#;

/// `configuration_values_in_service.yaml` as ossec.conf.
const SERVICE: &str = r#"<ossec_config>
  <wodle name="aws-s3">
    <disabled>no</disabled>
    <service type="SERVICE_TYPE">
      <aws_log_groups>LOG_GROUPS</aws_log_groups>
      <only_logs_after>ONLY_LOGS_AFTER</only_logs_after>
      <regions>REGIONS</regions>
      <remove_log_streams>REMOVE_LOG_STREAMS</remove_log_streams>
    </service>
  </wodle>
</ossec_config>
"#;

fn render(template: &str, params: &[(String, String)]) -> String {
    let mut out = template.to_string();
    // Longest names first: PATH_SUFFIX before PATH.
    let mut params = params.to_vec();
    params.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    for (k, v) in params {
        out = out.replace(&k, &escape(&v));
    }
    out
}

fn load(text: &str) -> Result<WodleConfig, collector::config::ConfigError> {
    parse(Path::new("ossec.conf"), text)
}

fn check_invalid(file: &str, template: &str) -> usize {
    let cases = read_cases(file);
    for (name, params) in &cases {
        let err = load(&render(template, params))
            .err()
            .unwrap_or_else(|| panic!("{name}: accepted"));
        assert!(err.line > 1, "{name}: {err}");
        assert!(!err.tag.is_empty(), "{name}: {err}");
    }
    cases.len()
}

fn check_empty(file: &str, template: &str) -> usize {
    let cases = read_cases(file);
    for (name, params) in &cases {
        let (empty, _) = params.iter().find(|(_, v)| v.is_empty()).unwrap();
        match load(&render(template, params)) {
            Err(err) => assert!(err.line > 1, "{name}: {err}"),
            Ok(c) => assert!(
                c.warnings.iter().any(|w| w.contains("Empty content")),
                "{name}: empty {empty} accepted silently"
            ),
        }
    }
    cases.len()
}

#[test]
fn invalid_values_in_bucket_are_refused() {
    assert_eq!(
        check_invalid("cases_invalid_values_in_bucket.yaml", BUCKET),
        7
    );
}

#[test]
fn invalid_values_in_service_are_refused() {
    assert_eq!(
        check_invalid("cases_invalid_values_in_service.yaml", SERVICE),
        5
    );
}

#[test]
fn empty_values_in_bucket_are_refused_or_warned() {
    assert!(check_empty("cases_empty_values_in_bucket.yaml", BUCKET) >= 6);
}

#[test]
fn empty_values_in_service_are_refused_or_warned() {
    assert!(check_empty("cases_empty_values_in_service.yaml", SERVICE) >= 4);
}

#[test]
fn missing_targets_and_types() {
    let e = load("<ossec_config>\n<wodle name=\"aws-s3\">\n<disabled>no</disabled>\n</wodle>\n</ossec_config>").unwrap_err();
    assert!(e
        .message
        .contains("No buckets, services or subscribers definitions found"));
    let e = load("<ossec_config>\n<wodle name=\"aws-s3\">\n<service>\n<aws_log_groups>g</aws_log_groups>\n</service>\n</wodle>\n</ossec_config>").unwrap_err();
    assert_eq!(
        (e.line, e.message.as_str()),
        (3, "Undefined type for service.")
    );
    // The legacy untyped bucket is refused with the form to use instead.
    let e = load("<ossec_config>\n<wodle name=\"aws-s3\">\n<bucket>\n<name>abc</name>\n</bucket>\n</wodle>\n</ossec_config>").unwrap_err();
    assert_eq!(e.line, 3);
}

#[test]
fn multiple_bucket_and_service_tags_all_load() {
    let c = load(
        r#"<ossec_config><wodle name="aws-s3"><disabled>no</disabled>
<bucket type="cloudtrail"><name>wazuh-cloudtrail-integration-tests</name><regions>us-east-1</regions></bucket>
<bucket type="cloudtrail"><name>wazuh-cloudtrail-integration-tests</name><regions>us-east-2</regions></bucket>
<service type="cloudwatchlogs"><aws_log_groups>wazuh-cloudwatchlogs-integration-tests</aws_log_groups><regions>us-east-1</regions></service>
<service type="cloudwatchlogs"><aws_log_groups>wazuh-cloudwatchlogs-integration-tests</aws_log_groups><regions>us-east-2</regions></service>
</wodle></ossec_config>"#,
    )
    .unwrap();
    assert_eq!((c.buckets.len(), c.services.len()), (2, 2));
    assert_eq!(c.buckets[1].spec.regions, ["us-east-2"]);
    assert_eq!(c.buckets[1].line, 3);
}
