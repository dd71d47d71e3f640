"""Encrypted blob storage: contract PDFs, attachments and signed documents at rest.

``BlobStore`` is what services use; ``backend_from_url`` and ``MasterKeyring`` build one from the
settings (``resolved_storage_url`` and ``resolved_master_key_file``).
"""

from econtract.storage.backends import backend_from_url
from econtract.storage.blobstore import BlobStore, StoredBlob
from econtract.storage.crypto import MasterKeyring

__all__ = ["BlobStore", "MasterKeyring", "StoredBlob", "backend_from_url"]
