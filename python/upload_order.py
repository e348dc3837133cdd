"""The files of a local model directory in the order a careful publisher uploads them, for the
object-storage test servers (s3_server.py, gcs_server.py)."""

import os


def files_to_upload(directory):
    """Every file under `directory` as its `/`-separated path below it, each directory's
    `saved_model.*` last (its presence says the version is complete)."""
    files = []
    for dirpath, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(dirpath, name)
            files.append(os.path.relpath(path, directory).replace(os.sep, "/"))
    files.sort(key=lambda rel: (rel.rsplit("/", 1)[-1].startswith("saved_model."), rel))
    return files
