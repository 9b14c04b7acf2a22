#!/usr/bin/env python3
"""A POS terminal's view of vouchd, from another language: a Python grpcio client generated
from proto/vouch/v1/vouch.proto at run time (grpcio-tools), driving enroll, verify and the challenges over
the Unix socket and over mutual TLS, and checking that the daemon refuses what it must.

    python3 tests/python/vouchd_client.py --unix SOCK --tcp HOST:PORT --certs DIR --data DIR

Run by the Rust test `daemon::python_client_over_both_transports` against a real daemon.
Prints one line per check; exits 1 on the first failure.
"""
import argparse
import os
import sys

import grpc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from vouch_stubs import load_stubs, tls_channel as channel_as, unix_channel  # noqa: E402

pb, rpc = load_stubs()


def check(name, condition, detail=""):
    if not condition:
        print(f"FAIL {name} {detail}")
        sys.exit(1)
    print(f"ok   {name}")


def image(path):
    with open(path, "rb") as f:
        return pb.Image(data=f.read(), format=pb.IMAGE_FORMAT_JPEG)


def tx(tid, amount):
    return pb.Transaction(id=tid, nonce="n-" + tid, amount_minor=amount, currency="EUR",
                          merchant_category="5411")


def tone_wav():
    """One second of a 440 Hz tone as a 16 kHz WAV file."""
    import io
    import math
    import struct
    import wave
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 16000)))
                               for i in range(16000)))
    return out.getvalue()


def code_of(call):
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def tls_channel(args, name, ca="ca.pem"):
    return channel_as(args.tcp, args.certs, name, ca)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--unix", required=True)
    p.add_argument("--tcp", required=True)
    p.add_argument("--certs", required=True)
    p.add_argument("--data", required=True)
    args = p.parse_args()
    faces = os.path.join(args.data, "faces-deepface")
    unix = unix_channel(args.unix)
    local = rpc.VouchStub(unix)

    enrolled = local.Enroll(pb.EnrollRequest(
        subject="py-alice", face=[image(os.path.join(faces, f)) for f in ("img1.jpg", "img2.jpg")]))
    check("unix: enroll", enrolled.decision == pb.DECISION_ACCEPT and enrolled.face_enrolled,
          str(enrolled))
    genuine = local.Verify(pb.VerifyRequest(subject="py-alice", transaction=tx("py-1", 1250),
                                            frames=[image(os.path.join(faces, "img7.jpg"))]))
    check("unix: genuine verify accepted", genuine.decision == pb.DECISION_ACCEPT, str(genuine))
    check("unix: receipt returned", genuine.receipt.startswith("vouch-receipt.v1."))
    impostor = local.Verify(pb.VerifyRequest(subject="py-alice", transaction=tx("py-2", 1250),
                                             frames=[image(os.path.join(faces, "img27.jpg"))]))
    check("unix: impostor rejected", impostor.decision == pb.DECISION_REJECT, str(impostor))
    check("unix: no raw scores", not impostor.HasField("scores"))

    till = rpc.VouchStub(tls_channel(args, "till-1"))
    over_tls = till.Verify(pb.VerifyRequest(subject="py-alice", transaction=tx("py-3", 990),
                                            frames=[image(os.path.join(faces, "img10.jpg"))]))
    check("mTLS: genuine verify accepted", over_tls.decision == pb.DECISION_ACCEPT, str(over_tls))
    tls_enroll = till.Enroll(pb.EnrollRequest(
        subject="py-dave", face=[image(os.path.join(faces, "img26.jpg"))]))
    check("mTLS: enroll", tls_enroll.face_enrolled, str(tls_enroll))
    dave = till.Verify(pb.VerifyRequest(subject="py-dave", transaction=tx("py-4", 990),
                                        frames=[image(os.path.join(faces, "img28.jpg"))]))
    check("mTLS: second subject verified", dave.decision == pb.DECISION_ACCEPT, str(dave))

    for label, stub in (("no client certificate", rpc.VouchStub(tls_channel(args, None))),
                        ("certificate from another CA", rpc.VouchStub(tls_channel(args, "rogue")))):
        code = code_of(lambda: stub.GetReceiptKey(pb.GetReceiptKeyRequest(), timeout=10))
        check(f"mTLS: {label} refused", code == grpc.StatusCode.UNAVAILABLE, str(code))
    limited = rpc.VouchStub(tls_channel(args, "till-2"))
    code = code_of(lambda: limited.Verify(pb.VerifyRequest(subject="py-alice",
                                                           transaction=tx("py-5", 100))))
    check("mTLS: method outside the terminal's allow-list", code == grpc.StatusCode.PERMISSION_DENIED,
          str(code))

    # Bad requests: the right codes, and the daemon keeps serving.
    raw = unix.unary_unary("/vouch.v1.Vouch/Verify", request_serializer=lambda b: b,
                           response_deserializer=lambda b: b)
    code = code_of(lambda: raw(b"\xff\xff\xff\xff\x0f garbage"))
    check("malformed protobuf: INVALID_ARGUMENT", code == grpc.StatusCode.INVALID_ARGUMENT, str(code))
    huge = pb.Image(data=b"\xff\xd8\xff" + b"\0" * (9 << 20), format=pb.IMAGE_FORMAT_JPEG)
    code = code_of(lambda: local.Verify(pb.VerifyRequest(subject="py-alice", transaction=tx("py-6", 100),
                                                         frames=[huge])))
    check("oversize message: RESOURCE_EXHAUSTED or OUT_OF_RANGE",
          code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.OUT_OF_RANGE), str(code))
    code = code_of(lambda: local.Verify(pb.VerifyRequest(
        subject="nobody-here", transaction=tx("py-7", 100),
        frames=[image(os.path.join(faces, "img7.jpg"))])))
    check("unknown subject: NOT_FOUND", code == grpc.StatusCode.NOT_FOUND, str(code))
    corrupt = pb.Image(data=b"\xff\xd8\xff\xe0" + os.urandom(2000), format=pb.IMAGE_FORMAT_JPEG)
    code = code_of(lambda: local.Verify(pb.VerifyRequest(subject="py-alice", transaction=tx("py-8", 100),
                                                         frames=[corrupt])))
    check("corrupt image: INVALID_ARGUMENT", code == grpc.StatusCode.INVALID_ARGUMENT, str(code))
    code = code_of(lambda: local.Verify(pb.VerifyRequest(
        subject="py-alice", transaction=tx("py-9", 100000),
        frames=[image(os.path.join(faces, "img7.jpg"))],
        voice=pb.VoiceResponse(challenge_id="00" * 16,
                               audio=pb.Audio(data=tone_wav(), format=pb.AUDIO_FORMAT_WAV)))))
    check("unknown challenge: FAILED_PRECONDITION", code == grpc.StatusCode.FAILED_PRECONDITION,
          str(code))

    # Active liveness: the built-in large tier asks for head movements and the passphrase.
    big = local.Verify(pb.VerifyRequest(subject="py-alice", transaction=tx("py-big", 100000),
                                        frames=[image(os.path.join(faces, "img7.jpg"))]))
    check("large payment: step up for movements and voice",
          big.decision == pb.DECISION_STEP_UP
          and set(big.reasons) == {"active_liveness_required", "voice_required"}, str(big))
    small = local.LivenessChallenge(pb.LivenessChallengeRequest(subject="py-alice",
                                                                transaction=tx("py-small", 100)))
    check("small payment: no movement challenge", not small.required and small.policy_tier == "small",
          str(small))
    moves = local.LivenessChallenge(pb.LivenessChallengeRequest(subject="py-alice",
                                                                transaction=tx("py-big", 100000)))
    check("large payment: a movement challenge",
          moves.required and 2 <= len(moves.movements) <= 4
          and len(moves.prompts) == len(moves.movements)
          and all(a != b for a, b in zip(moves.movements, moves.movements[1:]))
          and pb.MOVEMENT_UNSPECIFIED not in moves.movements, str(moves))
    frame = image(os.path.join(faces, "img7.jpg"))
    out_of_order = pb.MovementResponse(
        challenge_id=moves.challenge_id,
        frames=[pb.TimedFrame(image=frame, capture_time_us=t) for t in (0, 66000, 33000)])
    code = code_of(lambda: local.Verify(pb.VerifyRequest(
        subject="py-alice", transaction=tx("py-big", 100000), frames=[frame],
        movement=out_of_order)))
    check("movement frames out of order: INVALID_ARGUMENT", code == grpc.StatusCode.INVALID_ARGUMENT,
          str(code))
    code = code_of(lambda: local.Verify(pb.VerifyRequest(
        subject="py-alice", transaction=tx("py-big", 100000), frames=[frame],
        movement=out_of_order)))
    check("spent movement challenge: FAILED_PRECONDITION",
          code == grpc.StatusCode.FAILED_PRECONDITION, str(code))
    code = code_of(lambda: till.LivenessChallenge(pb.LivenessChallengeRequest(
        subject="py-alice", transaction=tx("py-big", 100000))))
    check("mTLS: movement challenge for an allowed terminal", code == grpc.StatusCode.OK, str(code))
    code = code_of(lambda: limited.LivenessChallenge(pb.LivenessChallengeRequest(
        subject="py-alice", transaction=tx("py-big", 100000))))
    check("mTLS: movement challenge outside the allow-list", code == grpc.StatusCode.PERMISSION_DENIED,
          str(code))

    code = code_of(lambda: local.Verify(pb.VerifyRequest(subject="py-alice",
                                                         transaction=pb.Transaction(id="x", nonce="y",
                                                                                    currency="euro"))))
    check("bad currency: INVALID_ARGUMENT", code == grpc.StatusCode.INVALID_ARGUMENT, str(code))

    # 1,000 concurrent requests, all in flight at once (every tenth a verification, the rest
    # lookups): each gets an answer or RESOURCE_EXHAUSTED (the bounded queue), none an error.
    probe = image(os.path.join(faces, "img7.jpg"))
    calls = []
    for i in range(1000):
        if i % 10 == 0:
            calls.append(local.Verify.future(pb.VerifyRequest(
                subject="py-alice", transaction=tx(f"load-{i}", 100), frames=[probe]), timeout=300))
        else:
            calls.append(local.GetSubject.future(pb.GetSubjectRequest(subject="py-alice"), timeout=300))
    codes = {}
    for call in calls:
        try:
            call.result()
            c = grpc.StatusCode.OK
        except grpc.RpcError as e:
            c = e.code()
        codes[c] = codes.get(c, 0) + 1
    print("     1,000 concurrent requests:", {c.name: n for c, n in codes.items()})
    check("1,000 concurrent: only OK and RESOURCE_EXHAUSTED",
          set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, str(codes))
    check("1,000 concurrent: some served", codes.get(grpc.StatusCode.OK, 0) > 0, str(codes))
    after = local.GetReceiptKey(pb.GetReceiptKeyRequest())
    check("still serving afterwards", len(after.public_key_hex) == 64)
    print("all checks passed")


if __name__ == "__main__":
    main()
