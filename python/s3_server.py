"""A local S3 server for smtool's object-storage tests, with a boto3 client on the side.

    s3_server.py serve LOG
        Starts moto's S3 server on 127.0.0.1 (a free port), prints `PORT <n>` and runs until
        its standard input closes. Every request is logged to the file LOG as an
        access-log line (`"GET /BUCKET/KEY HTTP/1.1" 200`: the tests check what smtool read). Access keys are checked (moto's IAM rules): the first
        requests, made by `setup`, create the test user.
    s3_server.py setup ENDPOINT
        Creates the IAM user `smtool-test` with an access key allowed every S3 action, a second
        key for a user allowed nothing, and prints both as `KEY <id> <secret>` /
        `DENIED <id> <secret>`.
    s3_server.py mkbucket ENDPOINT BUCKET
    s3_server.py upload ENDPOINT DIR s3://BUCKET/PREFIX
        Uploads every file under DIR, keyed by its path below DIR (`saved_model.pb` of each
        directory last, as a careful publisher would).
    s3_server.py list ENDPOINT s3://BUCKET/PREFIX
        Prints `key size` for every object under the prefix.

Credentials for the client commands come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
"""

import json
import os
import sys

from upload_order import files_to_upload


def client(endpoint, service="s3"):
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
    )


def split(url):
    assert url.startswith("s3://"), url
    bucket, _, prefix = url[len("s3://"):].partition("/")
    return bucket, prefix.strip("/")


def serve(log):
    import logging

    handler = logging.FileHandler(log)
    handler.setFormatter(logging.Formatter("%(message)s"))
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.addHandler(handler)
    werkzeug.setLevel(logging.INFO)

    # IAM checks on: unknown or wrong keys are refused, as on real S3. The five requests of
    # `setup`, which create the test users, are let through before the checks start.
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "5"
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(f"PORT {port}", flush=True)
    sys.stdin.read()
    server.stop()


def setup(endpoint):
    iam = client(endpoint, "iam")
    iam.create_user(UserName="smtool-test")
    iam.put_user_policy(
        UserName="smtool-test",
        PolicyName="all-s3",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="smtool-test")["AccessKey"]
    iam.create_user(UserName="smtool-nothing")
    denied = iam.create_access_key(UserName="smtool-nothing")["AccessKey"]
    print("KEY", key["AccessKeyId"], key["SecretAccessKey"])
    print("DENIED", denied["AccessKeyId"], denied["SecretAccessKey"])


def upload(endpoint, directory, url):
    bucket, prefix = split(url)
    s3 = client(endpoint)
    for rel in files_to_upload(directory):
        key = f"{prefix}/{rel}" if prefix else rel
        s3.upload_file(os.path.join(directory, rel), bucket, key)


def list_objects(endpoint, url):
    bucket, prefix = split(url)
    s3 = client(endpoint)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for obj in page.get("Contents", []):
            print(obj["Key"], obj["Size"])


def main(argv):
    command = argv[1]
    if command == "serve":
        serve(argv[2])
    elif command == "setup":
        setup(argv[2])
    elif command == "mkbucket":
        client(argv[2]).create_bucket(Bucket=argv[3])
    elif command == "upload":
        upload(argv[2], argv[3], argv[4])
    elif command == "list":
        list_objects(argv[2], argv[3])
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)
