#!/usr/bin/env python3
"""Writes samples/sample-trail.jsonl: a small, deterministic CloudTrail trail
as the AWS collector delivers it to the engine (one JSON event per line,
{"integration":"aws","aws":{...,"source":"cloudtrail","log_info":{...}}}).

The trail tells a short story over one morning so that every CloudTrail rule
of the shipped ruleset has something to say:
  - routine API calls by two engineers (80202), some of them failing (80203),
  - an intern probing IAM and getting AccessDenied (80250),
  - normal console sign-ins (80253),
  - a burst of failed sign-ins for "admin" from one address: 80254 five times,
    then 80255 (possible break-in) on the sixth,
  - calls that are not on the watch list (silent),
  - and, late in the morning, an attack that the detection pack reports:
    the root user signs in without MFA from an unknown address, then
    kofi's stolen access key opens SSH to the world, creates an access key
    for another user and stops the trail.

    python3 tools/gen_sample_trail.py > samples/sample-trail.jsonl

With --trail DIR it also writes the same records as CloudTrail delivers
them to S3: DIR/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<id>.json.gz, one file per
five minutes, each {"Records":[...]} (gzip without a timestamp, so the
files are the same on every run):

    python3 tools/gen_sample_trail.py --trail samples/trail > samples/sample-trail.jsonl
"""
import gzip
import hashlib
import os
import json
import random
import sys
from datetime import datetime, timedelta

rnd = random.Random(20241105)
START = datetime(2024, 11, 5, 8, 0, 0)
ACCOUNT = "111122223333"
events = []


def record(t, user, name, source, ip, extra=None, agent="aws-cli/2.15.0"):
    if user == "root":
        identity = {"type": "Root", "principalId": ACCOUNT,
                    "arn": "arn:aws:iam::%s:root" % ACCOUNT, "accountId": ACCOUNT}
    else:
        identity = {"type": "IAMUser", "principalId": "AIDA" + user.upper()[:8].ljust(8, "X"),
                    "arn": "arn:aws:iam::%s:user/%s" % (ACCOUNT, user),
                    "accountId": ACCOUNT, "userName": user}
    r = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source, "eventName": name, "awsRegion": "eu-west-1",
        "sourceIPAddress": ip, "userAgent": agent,
        "requestID": "%032x" % rnd.getrandbits(128), "eventID": "%032x" % rnd.getrandbits(128),
        "readOnly": name.startswith(("Describe", "List", "Get")), "eventType": "AwsApiCall",
        "managementEvent": True, "recipientAccountId": ACCOUNT, "eventCategory": "Management",
    }
    if extra:
        r.update(extra)
    key = "AWSLogs/%s/CloudTrail/eu-west-1/%s/%s_CloudTrail_eu-west-1_%s.json.gz" % (
        ACCOUNT, t.strftime("%Y/%m/%d"), ACCOUNT, t.strftime("%Y%m%dT%H%MZ"))
    r["source"] = "cloudtrail"
    r["log_info"] = {"aws_account_alias": "", "log_file": key, "s3bucket": "acme-cloudtrail"}
    r["source_ip_address"] = ip
    events.append((t, {"integration": "aws", "aws": r}))


t = START
routine = [("RunInstances", "ec2.amazonaws.com"), ("CreateSecurityGroup", "ec2.amazonaws.com"),
           ("PutBucketPolicy", "s3.amazonaws.com"), ("CreateAccessKey", "iam.amazonaws.com"),
           ("DescribeInstances", "ec2.amazonaws.com"), ("ListBuckets", "s3.amazonaws.com"),
           ("StopInstances", "ec2.amazonaws.com")]
for i in range(40):
    t += timedelta(seconds=rnd.randint(20, 90))
    user = rnd.choice(["maria", "kofi"])
    name, src = rnd.choice(routine)
    extra = None
    if rnd.random() < 0.15:
        extra = {"errorCode": "Client.UnauthorizedOperation" if src == "ec2.amazonaws.com" else "NoSuchBucket",
                 "errorMessage": "request failed"}
    record(t, user, name, src, "203.0.113.%d" % rnd.randint(10, 20), extra)

# Sign-ins at the start of the day.
for user in ["maria", "kofi"]:
    t += timedelta(seconds=30)
    record(t, user, "ConsoleLogin", "signin.amazonaws.com", "203.0.113.14",
           {"eventType": "AwsConsoleSignIn", "responseElements": {"ConsoleLogin": "Success"},
            "additionalEventData": {"MFAUsed": "Yes"}}, agent="Mozilla/5.0")

# The intern probes IAM.
for name in ["CreateUser", "AttachUserPolicy", "CreateAccessKey", "PutUserPolicy"]:
    t += timedelta(seconds=rnd.randint(5, 15))
    record(t, "intern", name, "iam.amazonaws.com", "198.51.100.23",
           {"errorCode": "AccessDenied",
            "errorMessage": "User: arn:aws:iam::%s:user/intern is not authorized to perform: iam:%s" % (ACCOUNT, name)})

# Password spraying against "admin": six failures in under two minutes.
for i in range(6):
    t += timedelta(seconds=rnd.randint(8, 18))
    record(t, "admin", "ConsoleLogin", "signin.amazonaws.com", "192.0.2.66",
           {"eventType": "AwsConsoleSignIn", "responseElements": {"ConsoleLogin": "Failure"},
            "errorMessage": "Failed authentication", "additionalEventData": {"MFAUsed": "No"}},
           agent="Mozilla/5.0 (X11; Linux x86_64)")

# Back to routine.
for i in range(10):
    t += timedelta(seconds=rnd.randint(20, 90))
    name, src = rnd.choice(routine)
    record(t, rnd.choice(["maria", "kofi"]), name, src, "203.0.113.%d" % rnd.randint(10, 20))

# The attack: someone with the root password and kofi's access key.
ATTACKER = "192.0.2.200"
t += timedelta(minutes=12)
record(t, "root", "ConsoleLogin", "signin.amazonaws.com", ATTACKER,
       {"eventType": "AwsConsoleSignIn", "responseElements": {"ConsoleLogin": "Success"},
        "additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home",
                                "MobileVersion": "No", "MFAUsed": "No"}},
       agent="Mozilla/5.0 (X11; Linux x86_64)")
t += timedelta(seconds=95)
record(t, "kofi", "AuthorizeSecurityGroupIngress", "ec2.amazonaws.com", ATTACKER,
       {"requestParameters": {"groupId": "sg-0a1b2c3d4e5f60718", "ipPermissions": {"items": [
           {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "groups": {},
            "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}, "ipv6Ranges": {},
            "prefixListIds": {}}]}},
        "responseElements": {"requestId": "%032x" % rnd.getrandbits(128), "_return": True}},
       agent="python-requests/2.31.0")
t += timedelta(seconds=40)
record(t, "kofi", "CreateAccessKey", "iam.amazonaws.com", ATTACKER,
       {"requestParameters": {"userName": "backup-svc"},
        "responseElements": {"accessKey": {"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "status": "Active",
                                           "userName": "backup-svc",
                                           "createDate": t.strftime("%b %d, %Y %I:%M:%S %p")}}},
       agent="python-requests/2.31.0")
t += timedelta(seconds=30)
record(t, "kofi", "StopLogging", "cloudtrail.amazonaws.com", ATTACKER,
       {"requestParameters": {"name": "arn:aws:cloudtrail:eu-west-1:%s:trail/management-events" % ACCOUNT}},
       agent="python-requests/2.31.0")

events.sort(key=lambda e: e[0])
out = sys.stdout
for _, e in events:
    out.write(json.dumps(e, separators=(",", ":")) + "\n")

if len(sys.argv) == 3 and sys.argv[1] == "--trail":
    files = {}
    for t, e in events:
        window = t.replace(minute=t.minute - t.minute % 5, second=0)
        rec = {k: v for k, v in e["aws"].items()
               if k not in ("source", "log_info", "source_ip_address")}
        files.setdefault(window, []).append(rec)
    for window, recs in sorted(files.items()):
        stamp = window.strftime("%Y%m%dT%H%MZ")
        suffix = hashlib.sha256(stamp.encode()).hexdigest()[:16]
        rel = "AWSLogs/%s/CloudTrail/eu-west-1/%s/%s_CloudTrail_eu-west-1_%s_%s.json.gz" % (
            ACCOUNT, window.strftime("%Y/%m/%d"), ACCOUNT, stamp, suffix)
        path = os.path.join(sys.argv[2], rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        body = json.dumps({"Records": recs}, separators=(",", ":")).encode()
        with open(path, "wb") as f:
            f.write(gzip.compress(body, mtime=0))
