"""chatplane.testing.v1: file upload, bot function import and conversation test suites.
The client's JSON (or multipart) body in, the vendor's JSON out, both HttpBody."""

from __future__ import annotations

from typing import Any

import grpc
from google.api import httpbody_pb2

from chatplane.analytics.types import parse_body
from chatplane.api import call
from chatplane.api.servicers.analytics import json_body
from chatplane.iam import scopes
from chatplane.testing.service import BotFunctionService, TestSuiteService
from chatplane.testing.uploads import UploadService
from chatplane.testing.v1 import testing_service_pb2 as pb
from chatplane.testing.v1 import testing_service_pb2_grpc as pb_grpc

_FUNCTIONS = "/chatplane.testing.v1.BotFunctionService/"
_SUITES = "/chatplane.testing.v1.TestSuiteService/"
SCOPES = {
    _FUNCTIONS + "UploadFile": scopes.PROJECT_WRITE,
    _FUNCTIONS + "ImportBotFunctions": scopes.PROJECT_WRITE,
    _SUITES + "ImportTestSuite": scopes.PROJECT_WRITE,
    _SUITES + "GetTestSuiteImportStatus": scopes.PROJECT_WRITE,
    _SUITES + "RunTestSuite": scopes.SESSION_EXECUTE,
    _SUITES + "GetTestRunStatus": scopes.SESSION_EXECUTE,
    _SUITES + "DeleteTestSuites": scopes.PROJECT_WRITE,
}

Context = grpc.aio.ServicerContext[Any, Any]


class BotFunctionServicer(pb_grpc.BotFunctionServiceServicer):
    def __init__(self, uploads: UploadService, functions: BotFunctionService) -> None:
        self._uploads = uploads
        self._functions = functions

    async def UploadFile(
        self, request: pb.UploadFileRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        stored = await self._uploads.upload(
            call.principal().tenant_id,
            content_type=request.file.content_type,
            body=request.file.data,
        )
        return json_body(stored)

    async def ImportBotFunctions(
        self, request: pb.ImportBotFunctionsRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        who = call.principal()
        return json_body(
            await self._functions.import_functions(
                who.tenant_id,
                request.bot_id,
                parse_body(request.body.data, array=True),
                created_by=who.subject,
            )
        )


class TestSuiteServicer(pb_grpc.TestSuiteServiceServicer):
    __test__ = False  # not a pytest class

    def __init__(self, suites: TestSuiteService) -> None:
        self._suites = suites

    async def ImportTestSuite(
        self, request: pb.ImportTestSuiteRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        who = call.principal()
        return json_body(
            await self._suites.import_suite(
                who.tenant_id,
                request.stream_id,
                parse_body(request.body.data),
                created_by=who.subject,
            )
        )

    async def GetTestSuiteImportStatus(
        self, request: pb.GetTestSuiteImportStatusRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        return json_body(
            await self._suites.import_status(
                call.principal().tenant_id, request.stream_id, request.ds_id
            )
        )

    async def RunTestSuite(
        self, request: pb.RunTestSuiteRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        who = call.principal()
        return json_body(
            await self._suites.run(
                who.tenant_id,
                request.stream_id,
                request.test_suite_name,
                parse_body(request.body.data),
                created_by=who.subject,
            )
        )

    async def GetTestRunStatus(
        self, request: pb.GetTestRunStatusRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        tenant_id = call.principal().tenant_id
        if request.test_suite_name == "import" and request.test_run_id.startswith("ds-"):
            # `.../testsuite/import/{dsId}/status` should match its own route; if a
            # gateway resolves it to this one, answer the import status all the same.
            return json_body(
                await self._suites.import_status(tenant_id, request.stream_id, request.test_run_id)
            )
        return json_body(
            await self._suites.run_status(
                tenant_id, request.stream_id, request.test_suite_name, request.test_run_id
            )
        )

    async def DeleteTestSuites(
        self, request: pb.DeleteTestSuitesRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        return json_body(
            await self._suites.delete(
                call.principal().tenant_id, request.stream_id, parse_body(request.body.data)
            )
        )
