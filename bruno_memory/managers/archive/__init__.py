"""Archive: the portable JSONL format, export (whole store, one user, anonymized, CSV),
import and copy between stacks, all through the façade (``scan``, ``restore``)."""

from bruno_memory.managers.archive.anonymize import Anonymizer, Redactor, RegexRedactor, new_key
from bruno_memory.managers.archive.copy import Copied, copy
from bruno_memory.managers.archive.export import Exported, digest, export, records
from bruno_memory.managers.archive.format import FORMAT, KINDS, ArchiveError, Digest, Header
from bruno_memory.managers.archive.importer import Imported, import_file
from bruno_memory.managers.archive.tables import export_csv

__all__ = [
    "FORMAT",
    "KINDS",
    "Anonymizer",
    "ArchiveError",
    "Copied",
    "Digest",
    "Exported",
    "Header",
    "Imported",
    "Redactor",
    "RegexRedactor",
    "copy",
    "digest",
    "export",
    "export_csv",
    "import_file",
    "new_key",
    "records",
]
