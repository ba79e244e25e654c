"""aiortc client of test_turn_browsers.py (run in the test's namespace with a
Python that has Debian's python3-aiortc): two RTCPeerConnections relay-only
through the TURN server given on the command line (aiortc 1.x has no
iceTransportPolicy, so every non-relay candidate is cut from the SDP each
side hands the other, and the nominated pairs are checked to be relay on both
ends); pc1 sends N data channel messages, pc2 echoes them. Prints one JSON
line with the result; exit 0 when it ran (the test judges the result)."""

import asyncio
import json
import sys

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription


def relay_only(desc):
    lines = [l for l in desc.sdp.split("\r\n")
             if not (l.startswith("a=candidate:") and " typ relay" not in l)]
    return RTCSessionDescription(sdp="\r\n".join(lines), type=desc.type)


def nominated(pc):
    """[(local type, remote type, local addr, remote addr)] of the nominated
    ICE pairs (aioice internals: aiortc exposes no stats for them)."""
    out = []
    sctp = pc.sctp
    if sctp is None:
        return out
    conn = sctp.transport.transport._connection  # RTCDtlsTransport -> RTCIceTransport -> aioice
    for _comp, pair in sorted(getattr(conn, "_nominated", {}).items()):
        lc, rc = pair.local_candidate, pair.remote_candidate
        out.append({"local_type": lc.type, "remote_type": rc.type,
                    "local": f"{lc.host}:{lc.port}", "remote": f"{rc.host}:{rc.port}",
                    "protocol": lc.transport})
    return out


async def call(url, user, cred, n):
    conf = RTCConfiguration(iceServers=[RTCIceServer(urls=url, username=user, credential=cred)])
    pc1, pc2 = RTCPeerConnection(conf), RTCPeerConnection(conf)
    got, echoed = [], []
    done = asyncio.Event()
    dc = pc1.createDataChannel("isar")

    @dc.on("open")
    def _open():
        for i in range(n):
            dc.send(f"isar-msg-{i}")

    @dc.on("message")
    def _echo(m):
        echoed.append(m)
        if len(echoed) >= n:
            done.set()

    @pc2.on("datachannel")
    def _dc(ch):
        @ch.on("message")
        def _m(m):
            got.append(m)
            ch.send("echo:" + m)

    await pc1.setLocalDescription(await pc1.createOffer())
    offer = relay_only(pc1.localDescription)
    await pc2.setRemoteDescription(offer)
    await pc2.setLocalDescription(await pc2.createAnswer())
    answer = relay_only(pc2.localDescription)
    await pc1.setRemoteDescription(answer)
    cands = {"offer": [l for l in offer.sdp.split("\r\n") if l.startswith("a=candidate:")],
             "answer": [l for l in answer.sdp.split("\r\n") if l.startswith("a=candidate:")]}
    err = None
    try:
        await asyncio.wait_for(done.wait(), 20)
    except asyncio.TimeoutError:
        err = "timed out waiting for the echoes"
    res = {"ok": err is None, "error": err, "dc_received": got, "dc_echoed": echoed,
           "pc1_pairs": nominated(pc1), "pc2_pairs": nominated(pc2), "candidates": cands,
           "ice1": pc1.iceConnectionState, "ice2": pc2.iceConnectionState}
    await pc1.close()
    await pc2.close()
    return res


def main():
    url, user, cred, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    try:
        res = asyncio.run(call(url, user, cred, n))
    except Exception as e:  # noqa: BLE001 - reported to the test
        res = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
