"""The classic TensorFlow Serving REST client, unchanged: `requests` POSTing tf.Example
features to `/v1/models/<model>:classify` and reading `{"results": [[[label, score], ...]]}`.

Prints the parsed response as JSON on stdout and exits non-zero when the answer does not have
TF Serving's shape (a list of [label, score] pairs per example, labels sorted by score).

Examples:
    check_classic_client.py --url http://127.0.0.1:8501 --model iris --float-feature x=5.1,3.5,1.4,0.2
    check_classic_client.py --url http://127.0.0.1:8501 --model digits --image digit.png --feature x
"""

import argparse
import base64
import json
import sys

import requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="server root, e.g. http://127.0.0.1:8501")
    parser.add_argument("--model", required=True)
    parser.add_argument("--signature", default="serving_default")
    parser.add_argument("--image", help="an image file sent as {'b64': ...} bytes")
    parser.add_argument("--feature", default="x", help="feature name for --image")
    parser.add_argument(
        "--float-feature",
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="a float feature (repeatable)",
    )
    args = parser.parse_args()

    example = {}
    if args.image:
        with open(args.image, "rb") as f:
            example[args.feature] = {"b64": base64.b64encode(f.read()).decode("ascii")}
    for spec in args.float_feature:
        name, _, values = spec.partition("=")
        example[name] = [float(v) for v in values.split(",")]
    if not example:
        parser.error("give --image or --float-feature")

    body = {"signature_name": args.signature, "examples": [example]}
    response = requests.post(f"{args.url}/v1/models/{args.model}:classify", json=body, timeout=60)
    if response.status_code != 200:
        print(f"HTTP {response.status_code}: {response.text}", file=sys.stderr)
        return 1
    answer = response.json()
    results = answer.get("results")
    if not isinstance(results, list) or len(results) != 1:
        print(f"expected one result per example: {answer}", file=sys.stderr)
        return 1
    pairs = results[0]
    if not pairs or not all(
        isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], float)
        for p in pairs
    ):
        print(f"expected [label, score] pairs: {pairs}", file=sys.stderr)
        return 1
    scores = [p[1] for p in pairs]
    if scores != sorted(scores, reverse=True):
        print(f"labels are not sorted by score: {pairs}", file=sys.stderr)
        return 1
    json.dump(answer, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
