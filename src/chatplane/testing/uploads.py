"""`POST /api/public/uploadfile`: a multipart upload stored like session attachments
(content-addressed under the data directory, the same FileStore and parser, whose form
fields give `fileContext` and `fileExtension`), recorded in
`uploaded_files` under a 24-hex id that tool and test-suite imports refer to."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from chatplane.errors import InvalidArgument
from chatplane.kit.clock import utcnow
from chatplane.sessions.attachments import FileStore, parse_upload
from chatplane.storage.db import Database
from chatplane.storage.models import UploadedFile

MAX_FIELD_CHARS = {"fileContext": 40, "fileExtension": 20}


@dataclass(frozen=True, slots=True)
class StoredFile:
    row: UploadedFile
    data: bytes


def invalid_file_id() -> InvalidArgument:
    """The vendor's error for an unknown (or another tenant's) file id."""
    return InvalidArgument("Invalid file id", field="fileId", reason="INVALID_FILE_ID")


class UploadService:
    def __init__(self, db: Database, files: FileStore, *, max_bytes: int) -> None:
        self._db = db
        self._files = files
        self.max_bytes = max_bytes

    async def upload(self, tenant_id: str, *, content_type: str, body: bytes) -> dict[str, str]:
        upload = await asyncio.to_thread(parse_upload, content_type, body, max_bytes=self.max_bytes)
        fields = upload.fields
        for name, limit in MAX_FIELD_CHARS.items():
            if len(fields.get(name, "")) > limit:
                raise InvalidArgument(f"{name} is too long (max {limit} characters)", field=name)
        extension = fields.get("fileExtension") or upload.filename.rpartition(".")[2]
        if "." not in upload.filename and not fields.get("fileExtension"):
            extension = ""
        digest = await self._files.put(upload.data)
        row = UploadedFile(
            id=secrets.token_hex(12),
            tenant_id=tenant_id,
            file_name=upload.filename,
            file_context=fields.get("fileContext", "")[:40],
            file_extension=extension.lower()[:20],
            size_bytes=len(upload.data),
            sha256=digest,
            created_at=utcnow(),
        )
        async with self._db.uow() as uow:
            uow.add(row)
        return {"fileId": row.id, "hash": digest, "fileName": row.file_name}

    async def read(self, tenant_id: str, file_id: str) -> StoredFile:
        """An uploaded file of the tenant and its bytes; `Invalid file id` otherwise."""
        if not isinstance(file_id, str) or len(file_id) != 24:
            raise invalid_file_id()
        async with self._db.read() as uow:
            row = await uow.get(UploadedFile, file_id)
        if row is None or row.tenant_id != tenant_id:
            raise invalid_file_id()
        try:
            data = await asyncio.to_thread(self._files.path(row.sha256).read_bytes)
        except OSError:
            raise invalid_file_id() from None
        return StoredFile(row, data)
