#!/usr/bin/env python3
"""SRTP end to end with two independent peers: ffmpeg (libavformat's own SRTP)
sends AES_CM_128_HMAC_SHA1_80 to leg a; isard transcrypts to AEAD_AES_128_GCM
on leg b; GStreamer's srtpdec (libsrtp) on 198.18.0.3 decrypts.

Oracle: the same ffmpeg command run without SRTP to a local socket (lavfi sine
+ pcm_alaw is deterministic): B must get the same RTP payloads, in order,
none missing, one SSRC, consecutive sequence numbers; ffmpeg's SRTCP sender
reports come from another port (ffmpeg cannot multiplex RTCP on its RTP
socket) and are dropped by strict source (a's remote is ffmpeg's RTP address);
isard's counters match and nothing else is dropped.

Skips (77) like test_srtp_gstreamer.py, also without ffmpeg's srtp protocol.
"""
import base64
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isar_it as it  # noqa: E402
import test_srtp_gstreamer as g  # noqa: E402

SSRC = 0x5EED
SECONDS = 2


def ffmpeg_cmd(url, extra=(), realtime=True):
    return (["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error"] +
            (["-re"] if realtime else []) + [
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:samples_per_frame=160", "-t", str(SECONDS),
             "-c:a", "pcm_alaw", "-f", "rtp", "-max_packet_size", "172",
             "-ssrc", str(SSRC), "-payload_type", "8"] + list(extra) + [url])


def rtp_only(datas):
    return [d for d in datas if len(d) >= 12 and not 64 <= (d[1] & 0x7F) <= 95]


def body(env):
    g.require_tools(("ffmpeg",))
    p = subprocess.run(["ffmpeg", "-hide_banner", "-protocols"], capture_output=True,
                       text=True, timeout=30)
    if "srtp" not in p.stdout.split():
        raise it.Skip("this ffmpeg has no srtp protocol")
    env.start()
    g.warm_arp(env, (it.A_IP, it.B_IP))
    k1 = g.key("F1", "AES_CM_128_HMAC_SHA1_80")
    k2 = g.key("F2", "AEAD_AES_128_GCM")
    b_addr = (it.B_IP, 5020)
    # ffmpeg sends its first SRTCP sender report (from port 4021, before the
    # first RTP packet, and it authenticates) and cannot multiplex RTCP on
    # its RTP socket: a leg without remote could latch on 4021, so a's remote
    # is given; the reports are then dropped by strict source.
    locs, _ = env.create("f1", f"a,remote={it.A_IP}:4020,in=" + g.spec("AES_CM_128_HMAC_SHA1_80", k1),
                         f"b,remote={b_addr[0]}:{b_addr[1]},out=" +
                         g.spec("AEAD_AES_128_GCM", k2))
    ra = locs["a"]
    with g.Procs(env) as procs:
        # The oracle: the same stream, plain, to a local socket.
        ref_rx = env.udp(g.LO, 7700)
        ref = procs.start("ffmpeg-plain", ffmpeg_cmd(f"rtp://{g.LO}:7700?localport=7701&rtcpport=7700",
                                                    realtime=False))
        ref.wait(timeout=SECONDS + 20)
        it.check_eq(ref.returncode, 0, "plain ffmpeg run exit status")
        want = rtp_only([d for d, _a in it.drain(ref_rx, 0.3, max_total=2000)])
        it.check(len(want) >= SECONDS * 40, f"plain ffmpeg produced {len(want)} RTP packets")
        it.check_eq({len(d) for d in want}, {172}, "ffmpeg packets of 160 samples")

        rx = env.udp(g.LO, 7603)
        procs.dec("f1-dec-b", "AEAD_AES_128_GCM", k2, SSRC, b_addr, 7603)
        b64 = base64.b64encode(k1).decode()
        ff = procs.start("ffmpeg-srtp", ffmpeg_cmd(
            f"srtp://{ra[0]}:{ra[1]}?localport=4020&rtcpport={ra[1]}",
            ["-srtp_out_suite", "AES_CM_128_HMAC_SHA1_80", "-srtp_out_params", b64]))
        ff.wait(timeout=SECONDS + 20)
        it.check_eq(ff.returncode, 0, "ffmpeg (srtp) exit status")
        got = [d for d, _a in it.drain(rx, 0.5, max_total=2000)]
    got_rtp = rtp_only(got)
    n_rtcp = len(got) - len(got_rtp)
    it.check_eq(len(got_rtp), len(want), "B: RTP packets (as many as ffmpeg sends plain)")
    it.check([d[12:] for d in got_rtp] == [d[12:] for d in want],
             "B: srtpdec output = ffmpeg's payloads, intact, in order")
    hdr = [it.rtp_parse(d) for d in got_rtp]
    it.check_eq({h["ssrc"] for h in hdr}, {SSRC}, "B: one SSRC")
    it.check(all((b["seq"] - a["seq"]) & 0xFFFF == 1 for a, b in zip(hdr, hdr[1:])),
             "B: consecutive sequence numbers")
    it.check_eq(n_rtcp, 0, "B: no RTCP (ffmpeg's came from an unlatched port)")
    sh = env.show("f1")
    la, lb = g.leg_of(sh, "a"), g.leg_of(sh, "b")
    it.check_eq(la["remote"], f"{it.A_IP}:4020", "leg a remote unmoved")
    it.check_eq((la["in"]["packets"], lb["out"]["packets"]), (len(got), len(got)),
                "a in / b out packets = what srtpdec passed on (RTP + RTCP)")
    it.check(set(la["drops"]) == {"src_mismatch"} and la["drops"]["src_mismatch"] <= 4,
             f"leg a drops only ffmpeg's RTCP from port 4021 as src_mismatch: {la['drops']}")
    it.check_eq(lb["drops"], {}, "leg b no drops")
    env.ctl_json("session", "delete", "f1")
    env.final_checks()


if __name__ == "__main__":
    sys.exit(it.main(body, "srtp_ffmpeg"))
