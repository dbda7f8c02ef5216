#!/usr/bin/env python3
"""Writes tests/ruleset/*.ini: Wazuh-format rule tests for every alerting rule
of trailwatch's shipped ruleset (rules/).

Each case is one event (or a burst for correlation rules) built from a small
description below, so the tests say in one line what a rule needs. Run it
after changing the shipped rules, then `cargo test` (tests/ruleset.rs runs the
files with `trailwatch test-rules` semantics).

    python3 tools/gen_ruleset_tests.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "ruleset")


def aws(source, **fields):
    """A collector envelope: {"integration":"aws","aws":{...}} with dotted keys."""
    body = {"source": source}
    for k, v in fields.items():
        put(body, k.replace("__", "."), v)
    return {"integration": "aws", "aws": body}


def put(obj, dotted, value):
    parts = dotted.split(".")
    for p in parts[:-1]:
        obj = obj.setdefault(p, {})
    obj[parts[-1]] = value


def ct(name, source="iam.amazonaws.com", **extra):
    base = {"eventName": name, "eventSource": source, "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.7", "userIdentity.type": "IAMUser",
            "userIdentity.userName": "alice"}
    base.update({k.replace("__", "."): v for k, v in extra.items()})
    return aws("cloudtrail", **base)


def ocsf(product, **fields):
    ev = {"activity_id": 1, "category_uid": 3, "metadata": {"product": {"name": product}}}
    for k, v in fields.items():
        put(ev, k.replace("__", "."), v)
    return ev


def sechub(control, status="FAILED", state="ACTIVE", product="Security Hub"):
    return aws("securityhub", finding={"Compliance": {"SecurityControlId": control, "Status": status},
                                       "RecordState": state, "ProductName": product})


CASES = {
    "aws_cloudtrail": [
        ("watched API call", 80202, 3, [ct("CreateUser")]),
        ("watched API call that failed", 80203, 4, [ct("CreateUser", errorCode="NoSuchEntity")]),
        ("access denied", 80250, 5, [ct("CreateUser", errorCode="AccessDenied")]),
        # DeleteObjects is not on the watch list (as in Wazuh 4.14), so 80202
        # never sees it and 80251/80252 stay silent; tests/engine.rs covers
        # them with the name added to the list.
        ("bulk delete is not on the watch list", 80200, 0, [ct("DeleteObjects", "s3.amazonaws.com")]),
        ("console sign-in", 80253, 3, [ct("ConsoleLogin", "signin.amazonaws.com", responseElements__ConsoleLogin="Success")]),
        ("failed console sign-in", 80254, 5, [ct("ConsoleLogin", "signin.amazonaws.com", responseElements__ConsoleLogin="Failure")]),
        ("sign-in brute force", 80255, 10, [ct("ConsoleLogin", "signin.amazonaws.com", responseElements__ConsoleLogin="Failure")] * 6),
        ("five failures are not yet a brute force", 80254, 5, [ct("ConsoleLogin", "signin.amazonaws.com", responseElements__ConsoleLogin="Failure")] * 5),
        ("call not on the watch list", 80200, 0, [ct("DescribeInstances", "ec2.amazonaws.com")]),
    ],
    "aws_guardduty": [
        ("low severity", 80301, 3, [aws("guardduty", severity=2, title="t", service__action__actionType="AWS_API_CALL")]),
        ("medium severity", 80302, 6, [aws("guardduty", severity=5, title="t", service__action__actionType="AWS_API_CALL")]),
        ("high severity", 80303, 10, [aws("guardduty", severity=8, title="t", service__action__actionType="AWS_API_CALL")]),
        ("low severity port probe", 80305, 3, [aws("guardduty", severity=1, title="t", service__action__actionType="PORT_PROBE")]),
        ("medium severity port probe", 80306, 6, [aws("guardduty", severity=5, title="t", service__action__actionType="PORT_PROBE")]),
        ("high severity port probe", 80307, 10, [aws("guardduty", severity=8, title="t", service__action__actionType="PORT_PROBE")]),
        ("severity outside the bands", 80300, 0, [aws("guardduty", severity="x", title="t")]),
    ],
    "aws_alb": [
        ("500", 80326, 3, [aws("alb", elb_status_code="500", elb="app/main")]),
        ("503", 80327, 3, [aws("alb", elb_status_code="503", elb="app/main")]),
        ("403", 80328, 5, [aws("alb", elb_status_code="403", elb="app/main")]),
        ("200 is quiet", 80325, 0, [aws("alb", elb_status_code="200", elb="app/main")]),
    ],
    "aws_macie": [
        ("low", 80351, 4, [aws("macie", severity__description="LOW", type="t", title="t")]),
        ("medium", 80352, 6, [aws("macie", severity__description="MEDIUM", type="t", title="t")]),
        ("high", 80353, 8, [aws("macie", severity__description="HIGH", type="t", title="t")]),
        ("other", 80350, 0, [aws("macie", severity__description="NONE")]),
    ],
    "aws_s3_server_access": [
        ("delete", 80361, 3, [aws("s3_server_access", operation="REST.DELETE.OBJECT", error_code="-")]),
        ("get", 80362, 2, [aws("s3_server_access", operation="REST.GET.BUCKET", http_status="200", error_code="-")]),
        ("successful object get is quiet", 80363, 0, [aws("s3_server_access", operation="REST.GET.OBJECT", http_status="200", error_code="-")]),
        ("put", 80364, 3, [aws("s3_server_access", operation="REST.PUT.OBJECT", requester="arn:aws:iam::1:user/a", error_code="-")]),
        ("put by S3 itself is quiet", 80365, 0, [aws("s3_server_access", operation="REST.PUT.OBJECT", requester="svc:s3.amazonaws.com", error_code="-")]),
        ("post", 80366, 2, [aws("s3_server_access", operation="REST.POST.UPLOAD", error_code="-")]),
        ("unknown operation is quiet", 80360, 0, [aws("s3_server_access", operation="REST.HEAD.OBJECT", error_code="-")]),
        ("error", 80367, 5, [aws("s3_server_access", operation="REST.HEAD.OBJECT", error_code="NoSuchKey")]),
        ("access denied", 80368, 5, [aws("s3_server_access", operation="REST.HEAD.OBJECT", error_code="AccessDenied")]),
        ("many access denied", 80369, 10, [aws("s3_server_access", operation="REST.HEAD.OBJECT", error_code="AccessDenied")] * 10),
        ("authentication failure", 80370, 5, [aws("s3_server_access", operation="REST.HEAD.OBJECT", error_code="InvalidSecurity", requester="x")]),
        ("many authentication failures", 80371, 10, [aws("s3_server_access", operation="REST.HEAD.OBJECT", error_code="InvalidSecurity", requester="x")] * 10),
    ],
    "aws_vpcflow": [
        ("accept", 80401, 3, [aws("vpc", action="ACCEPT", interface_id="eni-1", protocol="6")]),
        ("reject", 80402, 4, [aws("vpc", action="REJECT", interface_id="eni-1", protocol="6")]),
        ("other", 80400, 0, [aws("vpc", action="NODATA")]),
    ],
    "aws_waf": [
        ("allow is quiet", 80441, 0, [aws("waf", action="ALLOW")]),
        ("block", 80442, 3, [aws("waf", action="BLOCK", httpRequest__clientIp="203.0.113.9")]),
        ("many blocks from one client", 80443, 10, [aws("waf", action="BLOCK", httpRequest__clientIp="203.0.113.9")] * 8),
        ("other", 80440, 0, [aws("waf", action="COUNT")]),
    ],
    "aws_config": [
        ("history other status", 80451, 0, [aws("config", log_info__log_file="AWSLogs/1/Config/x_ConfigHistory_y.json.gz", configurationItemStatus="Other")]),
        ("snapshot without compliance", 80475, 3, [aws("config", log_info__log_file="AWSLogs/1/Config/x_ConfigSnapshot_y.json.gz", configurationItemStatus="OK")]),
        ("history ok", 80453, 0, [aws("config", log_info__log_file="AWSLogs/1/Config/x_ConfigHistory_y.json.gz", configurationItemStatus="OK")]),
        ("history discovered", 80454, 3, [aws("config", log_info__log_file="AWSLogs/1/Config/x_ConfigHistory_y.json.gz", configurationItemStatus="ResourceDiscovered")]),
        ("history not recorded", 80455, 3, [aws("config", log_info__log_file="AWSLogs/1/Config/x_ConfigHistory_y.json.gz", configurationItemStatus="ResourceNotRecorded")]),
        ("history deleted", 80456, 3, [aws("config", log_info__log_file="AWSLogs/1/Config/x_ConfigHistory_y.json.gz", configurationItemStatus="ResourceDeleted")]),
        # 80457 can never fire: 80456's pattern ResourceDeleted (a substring
        # search) already matches ResourceDeletedNotRecorded, and 80456 comes
        # first. Same in Wazuh 4.14. The case pins that behaviour.
        ("history deleted not recorded (shadowed by 80456)", 80456, 3, [aws("config", log_info__log_file="AWSLogs/1/Config/x_ConfigHistory_y.json.gz", configurationItemStatus="ResourceDeletedNotRecorded")]),
        ("snapshot compliance", 80476, 6, [aws("config", log_info__log_file="AWSLogs/1/Config/x_ConfigSnapshot_y.json.gz", configurationItemStatus="OK", configuration__complianceType="NON_COMPLIANT")]),
        ("neither history nor snapshot", 80450, 0, [aws("config", log_info__log_file="other.json.gz")]),
    ],
    "aws_trusted_advisor": [
        ("error", 80481, 5, [aws("trustedadvisor", status="ERROR", uuid="u")]),
        ("warn", 80482, 4, [aws("trustedadvisor", status="WARN", uuid="u")]),
        ("ok", 80483, 3, [aws("trustedadvisor", status="OK", uuid="u")]),
        ("other", 80480, 0, [aws("trustedadvisor", status="NONE")]),
    ],
    "aws_kms": [
        ("call", 80491, 3, [aws("kms", eventName="Decrypt", userIdentity__type="AssumedRole")]),
        ("call by a user", 80492, 3, [aws("kms", eventName="Decrypt", userIdentity__type="IAMUser", userIdentity__userName="bob")]),
        ("internal call is quiet", 80493, 0, [aws("kms", eventName="Decrypt", userIdentity__type="AWSService", userIdentity__invokedBy="AWS Internal")]),
        # 80494 can never fire: level-0 80493 is tried before 80492 under
        # 80491 and already matches. Same in Wazuh 4.14.
        ("internal call for a user is quiet (80493 wins)", 80493, 0, [aws("kms", eventName="Decrypt", userIdentity__type="IAMUser", userIdentity__userName="bob", userIdentity__invokedBy="AWS Internal")]),
    ],
    "aws_inspector": [
        ("high", 80496, 10, [aws("inspector", severity="High", title="t")]),
        ("medium", 80497, 7, [aws("inspector", severity="Medium", title="t")]),
        ("low", 80498, 4, [aws("inspector", severity="Low", title="t")]),
        ("informational", 80499, 3, [aws("inspector", severity="Informational", title="t")]),
        ("undefined severity is quiet", 80495, 0, [aws("inspector", severity="Undefined", title="t")]),
    ],
    "aws_security_lake": [
        ("cloudtrail", 99001, 3, [ocsf("CloudTrail")]),
        ("vpc", 99002, 3, [ocsf("Amazon VPC")]),
        ("route 53", 99003, 3, [ocsf("Route 53")]),
        ("failed api call", 99020, 3, [ocsf("CloudTrail", api__response__error="AccessDenied", api__operation="ListUsers", src_endpoint__ip="198.51.100.1")]),
        ("many failed api calls", 99021, 3, [ocsf("CloudTrail", api__response__error="AccessDenied", api__operation="ListUsers", src_endpoint__ip="198.51.100.1")] * 5),
        ("successful call with user and ip", 99022, 3, [ocsf("CloudTrail", api__response__error=None, api__operation="ListUsers", identity__user__name="alice", src_endpoint__ip="198.51.100.1")]),
        ("successful call without user and ip", 99023, 3, [ocsf("CloudTrail", api__response__error=None, api__operation="ListUsers", identity__user__name=None, src_endpoint__ip=None)]),
        ("successful call with ip only", 99024, 3, [ocsf("CloudTrail", api__response__error=None, api__operation="ListUsers", identity__user__name=None, src_endpoint__ip="198.51.100.1")]),
        ("successful call with user only", 99025, 3, [ocsf("CloudTrail", api__response__error=None, api__operation="ListUsers", identity__user__name="alice", src_endpoint__ip=None)]),
        ("password data", 99026, 5, [ocsf("CloudTrail", api__response__error=None, api__operation="GetPasswordData", identity__user__name="alice", src_endpoint__ip="198.51.100.1")]),
        ("much password data", 99027, 12, [ocsf("CloudTrail", api__response__error=None, api__operation="GetPasswordData", identity__user__name="alice", src_endpoint__ip="198.51.100.1")] * 15),
        ("ingress rule", 99028, 12, [ocsf("CloudTrail", api__response__error=None, api__operation="AuthorizeSecurityGroupIngress", identity__user__name="alice", src_endpoint__ip="198.51.100.1")]),
        ("role trust", 99029, 12, [ocsf("CloudTrail", api__response__error=None, api__operation="CreateRole", api__request__data="sts:AssumeRole", identity__user__name="alice", src_endpoint__ip="198.51.100.1")]),
        ("event selectors", 99030, 12, [ocsf("CloudTrail", api__response__error=None, api__operation="PutEventSelectors", identity__user__name="alice", src_endpoint__ip="198.51.100.1")]),
        ("established is quiet", 99050, 0, [ocsf("Amazon VPC", activity_name="Established", category_name="Network Activity", dst_endpoint__port=8080, src_endpoint__port=50000)]),
        ("ssh to", 99051, 3, [ocsf("Amazon VPC", activity_name="Established", category_name="Network Activity", dst_endpoint__port=22, src_endpoint__port=50000)]),
        ("ssh from", 99052, 3, [ocsf("Amazon VPC", activity_name="Established", category_name="Network Activity", dst_endpoint__port=50000, src_endpoint__port=22)]),
        ("rdp to", 99053, 3, [ocsf("Amazon VPC", activity_name="Established", category_name="Network Activity", dst_endpoint__port=3389, src_endpoint__port=50000)]),
        ("rdp from", 99054, 3, [ocsf("Amazon VPC", activity_name="Established", category_name="Network Activity", dst_endpoint__port=50000, src_endpoint__port=3389)]),
        ("smb to", 99055, 3, [ocsf("Amazon VPC", activity_name="Established", category_name="Network Activity", dst_endpoint__port=445, src_endpoint__port=50000)]),
        ("smb from", 99056, 3, [ocsf("Amazon VPC", activity_name="Established", category_name="Network Activity", dst_endpoint__port=50000, src_endpoint__port=139)]),
        ("rpc to", 99057, 3, [ocsf("Amazon VPC", activity_name="Established", category_name="Network Activity", dst_endpoint__port=135, src_endpoint__port=50000)]),
        ("rpc from", 99058, 3, [ocsf("Amazon VPC", activity_name="Established", category_name="Network Activity", dst_endpoint__port=50000, src_endpoint__port=135)]),
        ("dns ok", 99080, 3, [ocsf("Route 53", query__type="A", query__hostname="example.com", rcode="NOERROR", src_endpoint__ip="10.0.0.1")]),
        ("dns nxdomain", 99081, 3, [ocsf("Route 53", query__type="A", query__hostname="nope.example", rcode="NXDOMAIN", src_endpoint__ip="10.0.0.1")]),
        ("dns failure", 99082, 3, [ocsf("Route 53", query__type="A", query__hostname="x.example", rcode="SERVFAIL", rcode_id=-1, src_endpoint__ip="10.0.0.1")]),
        ("other product is quiet", 99000, 0, [ocsf("Security Hub")]),
    ],
    "aws_security_hub": [],
}

SH_GROUPS = [(99801, "Account.1"), (99802, "ACM.1"), (99803, "APIGateway.1"), (99804, "AppSync.1"),
             (99805, "AutoScaling.1"), (99806, "CloudFront.1"), (99807, "CloudTrail.1"), (99808, "CloudWatch.1"),
             (99809, "CodeBuild.3"), (99810, "DMS.2"), (99811, "DocumentDB.1"), (99812, "EC2.2"), (99813, "ECR.1"),
             (99814, "ECS.1"), (99815, "EKS.1"), (99816, "ElastiCache.1"), (99817, "ElasticBeanstalk.1"),
             (99818, "EMR.1"), (99819, "ES.1"), (99820, "GuardDuty.1"), (99821, "IAM.1"), (99822, "KMS.1"),
             (99823, "Lambda.2"), (99824, "Macie.1"), (99825, "Neptune.1"), (99826, "Opensearch.1"),
             (99827, "RDS.3"), (99828, "Redshift.2"), (99829, "S3.1"), (99830, "SageMaker.1"), (99831, "SSM.1"),
             (99832, "WAF.1")]
SH_CRIT = [(99836, "CloudTrail.6"), (99837, "CodeBuild.1"), (99838, "CodeBuild.2"), (99839, "DMS.1"),
           (99840, "DocumentDB.3"), (99841, "EC2.1"), (99842, "EC2.19"), (99843, "EMR.2"), (99844, "ES.2"),
           (99845, "IAM.4"), (99846, "IAM.6"), (99847, "IAM.9"), (99848, "KMS.3"), (99849, "Lambda.1"),
           (99850, "Neptune.3"), (99851, "Opensearch.2"), (99852, "RDS.1"), (99853, "RDS.2"),
           (99854, "Redshift.1"), (99855, "S3.2"), (99856, "S3.3"), (99857, "S3.19"), (99858, "SSM.4"),
           (99859, "EC2.9"), (99860, "S3.8")]
for rid, ctl in SH_GROUPS:
    CASES["aws_security_hub"].append(("control group %s" % ctl, rid, 0, [sechub(ctl)]))
for rid, ctl in SH_CRIT:
    CASES["aws_security_hub"].append(("failed control %s" % ctl, rid, 12, [sechub(ctl)]))
    CASES["aws_security_hub"].append(("passed control %s is quiet" % ctl, None, None, [sechub(ctl, status="PASSED")]))
for rid, prod in [(99833, "GuardDuty"), (99834, "Inspector"), (99835, "Health")]:
    CASES["aws_security_hub"].append(("product %s" % prod, rid, 0, [aws("securityhub", finding={"ProductName": prod})]))
CASES["aws_security_hub"].append(("finding without control or product", 99800, 0, [aws("aws.securityhub", finding={})]))


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, cases in CASES.items():
        lines = ["; Rule tests for trailwatch's shipped ruleset (%s)." % name,
                 "; Generated by tools/gen_ruleset_tests.py; Wazuh .ini format.", ""]
        for title, rule, level, events in cases:
            if rule is None:
                continue
            lines.append("[%s]" % title)
            for e in events:
                lines.append("log 1 pass = " + json.dumps(e, separators=(",", ":")))
            lines.append("rule = %d" % rule)
            lines.append("alert = %d" % level)
            lines.append("decoder = json")
            lines.append("")
        with open(os.path.join(OUT, name + ".ini"), "w") as f:
            f.write("\n".join(lines))
        # Negative cases (a rule id must NOT be reached) use "fail".
        negs = [(t, e) for t, r, l, e in cases if r is None and e]
        if negs:
            with open(os.path.join(OUT, name + ".ini"), "a") as f:
                for title, events in negs:
                    f.write("[%s]\n" % title)
                    for e in events:
                        f.write("log 1 fail = " + json.dumps(e, separators=(",", ":")) + "\n")
                    f.write("rule = 99800\nalert = 0\ndecoder = json\n\n")


if __name__ == "__main__":
    main()
