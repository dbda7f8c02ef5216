//! Parse time of a 1.1 MB configuration (issue 12: the parser counted the
//! lines from the start of the file for every element, 86 s for such a
//! file). Prints the time; the line numbers of the last bucket are checked
//! so the count is not optimised away.
//!
//! Run: `cargo bench -p trailwatch-collector --bench config_load`.

use std::path::Path;
use std::time::Instant;

fn main() {
    let mut text = String::from("<ossec_config>\n  <wodle name=\"aws-s3\">\n    <disabled>no</disabled>\n    <interval>10m</interval>\n");
    let mut n = 0;
    while text.len() < 1_100_000 {
        text.push_str(&format!(
            "    <bucket type=\"cloudtrail\">\n      <name>bucket-{n}</name>\n      <aws_profile>default</aws_profile>\n      \
             <regions>us-east-1,eu-west-1</regions>\n      <only_logs_after>2024-JAN-01</only_logs_after>\n    </bucket>\n"
        ));
        n += 1;
    }
    text.push_str("  </wodle>\n</ossec_config>\n");
    let t = Instant::now();
    let config = collector::config::parse(Path::new("bench.conf"), &text).expect("configuration");
    let took = t.elapsed().as_secs_f64();
    println!(
        "configuration: {} bytes, {} lines, {} buckets parsed in {took:.3} s",
        text.len(),
        text.lines().count(),
        config.buckets.len()
    );
    let tree = collector::config::parse_tree(Path::new("bench.conf"), &text).expect("tree");
    let last = tree[0].children[0].children.last().expect("a bucket");
    println!(
        "last bucket at line {} (file has {} lines)",
        last.line,
        text.lines().count()
    );
}
