"""SRP-2048 of Telegram's 2FA against the known-answer vectors of LOGIN.md §1.9."""

from __future__ import annotations

import hashlib

import pytest

from dcpool.crypto import srp
from dcpool.errors import BadDhG, BadDhValue


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


SALT1 = bytes(range(1, 0x29))
SALT2 = bytes(range(0xA0, 0xB0))
A_SECRET = b"\x11" * 256
B_SECRET = b"\x22" * 256
SRP_ID = 0x0123456789ABCDEF
V = h("""
79201bc6bc1c3ea4b9b74afecf259592230c4a0eb4dcf4b9caf43d266bb05204
3ee8d92ee350ffbcfbd15a8cc3c56346c8193812e2b023fff519a46225cfa53f
e41f32b8d61b968c82f75ebf915858932b9725ead57eeb186038e237dc5da049
6004c39af8bf4460c159be8bbb1571fdf80232bcead109ab0f32e202b2a2dba3
29959afad8c17b5a89e3e2c7e838b901a4abc86c3fe4c450ce5a5bbcb5ee752b
2ef7931e078a939a2a6252d35d84bc21638a92ec94813bb8711d2cb35f1fbbcd
38d42c107d73736afaa9a6c74f9016abb0bc3cb2c377f53a9ef7e6090f1e5c79
aeb70e2eafa6d96b4094b1cc9eefc4d12b4b33fe4701aa51d18332c6b3483352""")
SRP_B = h("""
aafd29867ed8c095c890ac13908855bc7f0c95a6e1bbb3d514b457b1b330417c
e4298ff59673c982082e61166e66aa8c5f7d8a8bde388481bce69ee1dd357fb2
779221d916a87a6297100d431108695e97900b9d6a559584f628967e35a903b3
2dda5a3dd64e68cf921efc582e42405776b602bf519519840bb38f3814f6e7c5
f5b60737de715849727960ca74a04ce8a0a431abbd514c1e4c6f1b46e2949fc7
894637127101a83290ae6a44ed9fcd49e12cbe4198218d0c0b2e3b4355dbbc32
9e531bfe76a5539ea06bc4ddbb2efea12b7ee86b133979b350036989c3629d61
30a2b1bab64e0ac5809baa139c78730b3ef582d7b48b0e83a637d4bedf676390""")
A_PUB = h("""
62b598364c7e35a1f02677c37bf5f1c96416f155b20a9565e0d0773518136187
a0298d2c5d94d4772e322d7d6db006283cfb9465bf5f7f27976e7ed57be462cd
6f51179ae7d8cf03b53b668b9e87d2d0c405911d9f2e65fd8272b34c1c84681a
d30860b82c7bd168ebdc40973bf3f7fd38ad33acd20179e0273de9fa05a7556c
e8dcfb9871905047666c7f4bc8b7527ce9c8d105050aea8e50bb18ed5fe04726
d2dc1c4094ccbde93af2ce156c98fba4299ae4dad52ff692bdceeebb73fa02ac
f4ae4ee98caeabdb091d51f466e24eb992016e316a15847ba27417a884de8db2
b3d123715d3d61b31b76cbccd04cd1165c76b3c5627cb1418147eda9c51bf63f""")
M1 = h("5d18508f7e8d93ac5fe3c0df789eff7de9fc46797d0576b3cd47f5eeccf4fdcd")
M1_WRONG = h("9db2ec6de1330378879466bee1485603596f5a4ef4c2f88ce694cfd1465ce624")


def fixed(data: bytes):
    return lambda n: data[:n]


def test_password_hash_and_verifier():
    assert srp.password_hash("hunter2", SALT1, SALT2) == h(
        "965e64ebf3334b94fa4dbc68d44e1375debd5d4a5cd6ba1016232426a4f20006"
    )
    assert srp.verifier("hunter2", SALT1, SALT2) == V
    assert srp.multiplier() == int(
        "b9a87477bf585b87c1af9ea7d4850ff0edaa72f82e7afec3218091a79a5068b9", 16
    )


def test_server_challenge_vector():
    challenge = srp.server_challenge(V, fixed(B_SECRET))
    assert challenge.B == SRP_B
    assert "22" not in repr(challenge)


def test_client_check_vector():
    check = srp.client_check(
        "hunter2", srp_id=SRP_ID, srp_B=SRP_B, salt1=SALT1, salt2=SALT2, rng=fixed(A_SECRET)
    )
    assert check.A == A_PUB
    assert check.M1 == M1
    assert repr(check) == f"<SrpCheck srp_id={SRP_ID}>"


def test_wrong_password_vector():
    check = srp.client_check(
        "hunter3", srp_id=SRP_ID, srp_B=SRP_B, salt1=SALT1, salt2=SALT2, rng=fixed(A_SECRET)
    )
    assert check.M1 == M1_WRONG


def test_server_verifies_vector():
    challenge = srp.server_challenge(V, fixed(B_SECRET))
    kw = dict(v=V, challenge=challenge, salt1=SALT1, salt2=SALT2)
    assert srp.server_verify(A=A_PUB, M1=M1, **kw)
    assert not srp.server_verify(A=A_PUB, M1=M1_WRONG, **kw)
    # SRP hygiene: A = 0, 1, p-1 and p are refused whatever M1 says (§1.6 step 3)
    for bad in (0, 1, srp.SRP_P - 1, srp.SRP_P):
        assert not srp.server_verify(A=srp.pad(bad), M1=M1, **kw)


def test_gotd_math_vector():
    # V-SRP2 (a = 1): only the math; A = 3 is refused by both real sides.
    salt1 = h("4D11FB6BEC38F9D2546BB0F61E4F1C99A1BC0DB8F0D5F35B1291B37B213123D7ED48F3C6794D495B")
    salt2 = h("A1B181AAFE88188680AE32860D60BB01")
    srp_b = h("""
9C52401A6A8084EC82F01C3725D3FB448BD2F0C909F9D97726EAC4B7A74172D9
52F02466BE6734FA274D2B7429E27397F10372D66B400B80A5C5AE3F28B17BF3
105D7A2D2A885998CDC2DEFC208AEC217AB58859A9ABC2374AD93DC285F4B3FB
CAFF4143D7888F2425BD2FB711B25609CEB21757D935B1EF2F042173AD0CE2FE
0E474DAC53914BD25A8A9AED4AEA8953D55CB88621DB37B871EA0D04393AC098
7F68094CCC9DE8239251375D8FFFD263316CD528C097B7BC9FB919FBEDB76C52
5DF3413C374EE076D97A1E6D352BB7CC80FD13651B04B32E2E48C5268150842C
FD07CF855958B1B5EA9C36FDAD697FE3AEC8DCC6B1EFEC36874AF226204676CF""")
    g, p = srp.SRP_G, srp.SRP_P
    x = int.from_bytes(srp.password_hash("123123", salt1, salt2), "big")
    b_pub = int.from_bytes(srp_b, "big")
    g_b = (b_pub - srp.multiplier() * pow(g, x, p)) % p
    u = int.from_bytes(hashlib.sha256(srp.pad(3) + srp_b).digest(), "big")
    s = pow(g_b, 1 + u * x, p)
    assert srp.compute_m1(g, p, salt1, salt2, 3, b_pub, s) == h(
        "999DF906BDA2C6CBB52F503406EBA2D0D0503ACE0CC302C38F13EE5010AD4051"
    )


def test_random_round_trip():
    import os

    salt1, salt2 = os.urandom(40), os.urandom(16)
    v = srp.verifier("pässwörd", salt1, salt2)
    challenge = srp.server_challenge(v, os.urandom)
    check = srp.client_check("pässwörd", srp_id=7, srp_B=challenge.B, salt1=salt1, salt2=salt2, rng=os.urandom)
    assert srp.server_verify(v=v, challenge=challenge, A=check.A, M1=check.M1, salt1=salt1, salt2=salt2)


def test_client_refuses_bad_parameters():
    kw = dict(srp_id=1, salt1=SALT1, salt2=SALT2, rng=fixed(A_SECRET))
    with pytest.raises(BadDhValue):
        srp.client_check("x", srp_B=b"\x00" * 256, **kw)
    with pytest.raises(BadDhValue):
        srp.client_check("x", srp_B=srp.pad(srp.SRP_P), **kw)
    with pytest.raises(BadDhG):
        srp.client_check("x", srp_B=SRP_B, g=5, **kw)
    with pytest.raises(BadDhValue) as info:  # right B for hunter2, so g_b is out of the window for x
        srp.client_check("secret-password", srp_B=srp.pad(srp.multiplier() * int.from_bytes(srp.verifier("secret-password", SALT1, SALT2), "big") % srp.SRP_P + 1), **kw)
    assert "secret-password" not in str(info.value)
