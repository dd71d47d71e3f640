"""Public PKI endpoints: CA certificates, CRLs, OCSP and the RFC 3161 TSA (no login: relying
parties and validators fetch these from the URLs inside the certificates)."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request, Response

from econtract.credentials import service
from econtract.db import read_only_unit
from econtract.errors import NotFound, ValidationFailed
from econtract.http import clock, runtime

router = APIRouter(tags=["pki"])

MAX_REQUEST_BYTES = 64 * 1024  # OCSP and time-stamp requests are a few hundred bytes


async def _body(request: Request, content_type: str) -> bytes:
    sent = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if sent != content_type:
        raise ValidationFailed(f"Send the request as {content_type}.", code="wrong_content_type")
    body = await request.body()
    if len(body) > MAX_REQUEST_BYTES:
        raise ValidationFailed("The request is too large.", code="request_too_large")
    return body


def _slug(name: str, suffix: str) -> str:
    if not name.endswith(suffix):
        raise NotFound("No such file.", code="not_found")
    return name.removesuffix(suffix)


@router.get("/pki/ca/{name}", summary="A platform CA certificate (DER)")
def ca_certificate(request: Request, name: str) -> Response:
    authority = runtime(request).authority()
    der = authority.ca(_slug(name, ".crt")).cert_der
    return Response(der, media_type="application/pkix-cert",
                    headers={"Cache-Control": "public, max-age=86400"})


@router.get("/pki/crl/{name}", summary="The current CRL of a platform CA (DER)")
def certificate_revocation_list(request: Request, name: str) -> Response:
    rt = runtime(request)
    with read_only_unit(rt.engine) as session:
        der = service.crl(session, rt.authority(), slug=_slug(name, ".crl"), now=clock(request)())
    return Response(der, media_type="application/pkix-crl",
                    headers={"Cache-Control": "no-cache"})


@router.post("/pki/ocsp", summary="OCSP responder (RFC 6960, POST)")
async def ocsp_post(request: Request) -> Response:
    return _ocsp(request, await _body(request, "application/ocsp-request"))


@router.get("/pki/ocsp/{encoded:path}", summary="OCSP responder (RFC 6960, GET)")
def ocsp_get(request: Request, encoded: str) -> Response:
    try:
        der = base64.b64decode(encoded.replace("%2B", "+").replace("%2F", "/")
                               .replace("%3D", "="), validate=True)
    except (binascii.Error, ValueError):
        der = b""  # answered as a malformed request, as the RFC asks
    return _ocsp(request, der)


def _ocsp(request: Request, der: bytes) -> Response:
    rt = runtime(request)
    with read_only_unit(rt.engine) as session:
        answer = service.ocsp(session, rt.authority(), request_der=der, now=clock(request)())
    return Response(answer, media_type="application/ocsp-response",
                    headers={"Cache-Control": "no-cache"})


@router.post("/tsa", summary="The built-in RFC 3161 time-stamping service")
async def time_stamp(request: Request) -> Response:
    der = await _body(request, "application/timestamp-query")
    answer = service.timestamp(runtime(request).authority(), request_der=der,
                               now=clock(request)())
    return Response(answer, media_type="application/timestamp-reply")
