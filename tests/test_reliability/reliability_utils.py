"""Helpers of the fault-injection suite (imported by the tests)."""
import hashlib
import os
from typing import Dict

DAMAGE_KINDS = ('empty', 'truncated', 'random', 'malicious')


class RunsCode:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker, )


def zoo_entry(name: str, weights: str, file: str = None,
              body: bytes = None) -> Dict:
    """A model-index entry; with ``body``, its SHA-256 and size."""
    checkpoint = {}
    if file is not None:
        checkpoint['File'] = file
    if body is not None:
        checkpoint['SHA256'] = hashlib.sha256(body).hexdigest()
        checkpoint['Size'] = len(body)
    return {'Name': name, 'Weights': weights,
            'Metadata': {'Checkpoint': checkpoint} if checkpoint else {}}
