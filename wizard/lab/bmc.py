"""A fake BMC: pyghmi's IPMI 2.0 server in front of a simulated server.

It answers what discovery and provisioning ask: power, boot device (next boot or
persistent), device id, FRU (identity plus hardware as custom fields) and LAN
configuration. Faults for tests: a password that never matches, silence, or dropping the
first K packets.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

import pyghmi.ipmi.bmc as pyghmi_bmc
import pyghmi.ipmi.private.constants as constants
import pyghmi.ipmi.private.serversession as serversession

from wizard.hardware.fru import encode_fru

NETFN_APP, NETFN_CHASSIS, NETFN_STORAGE, NETFN_TRANSPORT = 0x06, 0x00, 0x0A, 0x0C
BOOT_DEVICES = {"network": 0x1, "disk": 0x2, "cd": 0x5, "bios": 0x6, "default": 0x0}
"""IPMI boot flag selectors (bits 5:2 of boot flags data byte 2)."""
CC_INVALID_FIELD, CC_NOT_IN_STATE, CC_OUT_OF_RANGE = 0xCC, 0xD5, 0xC9
RMCP_INVALID_AUTH_ALGORITHM, RMCP_UNAUTHORIZED_NAME = 0x11, 0x0D


@dataclass
class Hardware:
    """The simulated server behind a BMC."""

    vendor: str
    model: str
    serial: str
    cpu_cores: int
    memory_gb: int
    disks: int
    nic_macs: list[str]
    virtualization: bool = True


@dataclass
class ServerState:
    """What the BMC controls, and counters a test can read back."""

    power: str = "off"
    boot_device: str = "default"
    boot_persistent: bool = False
    power_cycles: int = 0
    power_ons: int = 0
    boots: list[str] = field(default_factory=list)


CONVERGE_FAULTS = ("converge_fail", "converge_hang")
"""The faults of a lab server's chef-client (the others are its BMC's)."""


@dataclass
class Faults:
    """Ways a lab server can misbehave: its BMC (these the fleet process acts on) and its
    chef-client (``converge_*``: the lab's chef-client reads them at each run)."""

    wrong_password: bool = False
    silent: bool = False
    drop_first: int = 0
    converge_fail: bool = False
    converge_hang: bool = False


class FakeBmc(pyghmi_bmc.Bmc):
    """One BMC on one (address, port), serving one simulated server."""

    serversocket: socket.socket | _AddressKeyedSocket
    """pyghmi's UDP socket; keyed by address once this BMC is set up."""
    uuid: UUID
    """The system GUID (pyghmi draws it)."""

    def __init__(self, *, address: str, port: int, username: str, password: str,
                 mac: str, hardware: Hardware, state: ServerState | None = None,
                 faults: Faults | None = None,
                 on_change: Callable[[FakeBmc], None] | None = None,
                 on_boot: Callable[[FakeBmc, str], None] | None = None):
        self.faults = faults or Faults()
        self.address, self.mac, self.hardware = address, mac, hardware
        self.state = state or ServerState()
        self.on_change = on_change
        self.on_boot = on_boot
        self.lock = threading.Lock()
        self.packets_dropped = 0
        accepted = password + "-rejected" if self.faults.wrong_password else password
        super().__init__({username: accepted}, port=port, address=address)
        self._key_sessions_by_address()
        self.mfgid, self.prodid = 0x4F4F, 0x0001
        self.fru = encode_fru(hardware.vendor, hardware.model, f"{hardware.model}-S",
                              hardware.serial, _extra(hardware))

    def _key_sessions_by_address(self) -> None:
        """Make pyghmi tell this BMC's sessions from those of BMCs on other addresses.

        pyghmi routes a server's packets by (client address, server *port*), so BMCs that
        share port 623 on different loopback addresses would take each other's sessions
        when one client socket talks to several. Wrapping the socket so its "port" is
        (address, port), and using that as this BMC's port, keys them apart.
        """
        raw = self.serversocket
        assert isinstance(raw, socket.socket)  # pyghmi's own, not keyed yet
        keyed = _AddressKeyedSocket(raw)
        ipmisession = serversession.ipmisession
        ipmisession.iosockets[ipmisession.iosockets.index(raw)] = keyed
        ipmisession.Session.bmc_handlers[keyed] = ipmisession.Session.bmc_handlers.pop(raw)
        self.serversocket = keyed
        self.port = keyed.getsockname()[1]

    # -- faults and cipher suites -------------------------------------------------------------

    def sessionless_data(self, data: bytes, sockaddr: object) -> None:
        if self.faults.silent:
            return
        if self.packets_dropped < self.faults.drop_first:
            self.packets_dropped += 1
            return
        packet = bytearray(data)
        if len(packet) > 37 and packet[4] == 6 and packet[5] == 16:  # RMCP+ Open Session Request
            if packet[16 + 12] != 1:
                # Asking for other than RAKP-HMAC-SHA1: say no, so the client falls back to
                # cipher suite 3 (pyghmi's server knows only that one).
                self._refuse_open_session(packet[16:], sockaddr)
            elif not self._repeat_open_session(packet[16:], sockaddr):
                _ServerSession(self.authdata, self.kg, sockaddr, self.serversocket,
                               packet[16:], self.uuid, bmc=self)
            return
        super().sessionless_data(packet, sockaddr)

    def _repeat_open_session(self, request: bytearray, sockaddr: object) -> bool:
        """Answer a retransmitted Open Session Request as the first time; True if it was."""
        handlers = serversession.ipmisession.Session.bmc_handlers
        session = handlers.get(sockaddr, {}).get(self.port)
        if isinstance(session, _ServerSession) and session.opened_by == bytes(request):
            session.send_payload(session.open_response,
                                 constants.payload_types["rmcpplusopenresponse"], retry=False)
            return True
        return False

    def _refuse_open_session(self, request: bytearray, sockaddr: object) -> None:
        response = bytearray([request[0], RMCP_INVALID_AUTH_ALGORITHM, 0, 0]) + request[4:8]
        response += bytes(4)
        header = bytearray([0x06, 0x00, 0xFF, 0x07, 0x06,
                            constants.payload_types["rmcpplusopenresponse"]])
        header += bytes(8) + struct.pack("<H", len(response))
        serversession.ipmisession._io_sendto(self.serversocket, header + response, sockaddr)

    # -- chassis ------------------------------------------------------------------------------

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def _boot(self) -> None:
        device = self.state.boot_device
        self.state.boots.append(device)
        if not self.state.boot_persistent:
            self.state.boot_device = "default"
        if self.on_boot is not None:
            self.on_boot(self, device)

    def get_power_state(self) -> str:
        return self.state.power

    def power_on(self) -> int:
        with self.lock:
            if self.state.power == "off":
                self.state.power, self.state.power_ons = "on", self.state.power_ons + 1
                self._boot()
        self._changed()
        return 0

    def power_off(self) -> int:
        with self.lock:
            self.state.power = "off"
        self._changed()
        return 0

    power_shutdown = power_off

    def power_cycle(self) -> int:
        with self.lock:
            self.state.power_cycles += 1
            self.state.power = "on"
            self._boot()
        self._changed()
        return 0

    def power_reset(self) -> int:
        with self.lock:
            if self.state.power != "on":
                return CC_NOT_IN_STATE
            self._boot()
        self._changed()
        return 0

    def get_system_guid(self) -> UUID:
        return self.uuid

    def cold_reset(self) -> int:
        return 0

    def get_system_boot_options(self, request: dict[str, Any],
                                session: serversession.ServerSession) -> None:
        if request["data"][0] != 5:
            session.send_ipmi_response(code=0x80)
            return
        flags = 0x80 | (0x40 if self.state.boot_persistent else 0)
        selector = BOOT_DEVICES.get(self.state.boot_device, 0)
        session.send_ipmi_response(data=[1, 5, flags, selector << 2, 0, 0, 0])

    def set_system_boot_options(self, request: dict[str, Any],
                                session: serversession.ServerSession) -> None:
        data = request["data"]
        if data[0] != 5:
            session.send_ipmi_response()
            return
        names = {code: name for name, code in BOOT_DEVICES.items()}
        selector = (data[2] >> 2) & 0xF if len(data) > 2 else 0
        if selector not in names:
            session.send_ipmi_response(code=CC_INVALID_FIELD)
            return
        with self.lock:
            self.state.boot_device = names[selector]
            self.state.boot_persistent = bool(data[1] & 0x40)
        self._changed()
        session.send_ipmi_response()

    # -- FRU and LAN ----------------------------------------------------------------------------

    def handle_raw_request(self, request: dict[str, Any],
                           session: serversession.ServerSession) -> None:
        netfn, command, data = request["netfn"], request["command"], request["data"]
        if netfn == NETFN_STORAGE and command == 0x10:  # Get FRU Inventory Area Info
            if data[0] != 0:
                session.send_ipmi_response(code=CC_OUT_OF_RANGE)
            else:
                session.send_ipmi_response(data=list(struct.pack("<HB", len(self.fru), 0)))
        elif netfn == NETFN_STORAGE and command == 0x11:  # Read FRU Data
            offset, count = data[1] | (data[2] << 8), data[3]
            chunk = self.fru[offset:offset + count]
            session.send_ipmi_response(data=[len(chunk), *chunk])
        elif netfn == NETFN_APP and command == 0x42:  # Get Channel Info: 1 is an 802.3 LAN
            session.send_ipmi_response(data=[1, 0x04, 0x01, 0x80, 0xF2, 0x1B, 0x00, 0, 0])
        elif netfn == NETFN_TRANSPORT and command == 0x02:  # Get LAN Configuration Parameters
            self._lan_parameter(data[1], session)
        else:
            super().handle_raw_request(request, session)

    def _lan_parameter(self, parameter: int, session: serversession.ServerSession) -> None:
        values = {
            3: [int(part) for part in self.address.split(".")],  # IP address
            4: [1],  # IP address source: static
            5: [int(part, 16) for part in self.mac.split(":")],  # MAC address
            6: [255, 255, 252, 0],  # subnet mask
        }
        if parameter not in values:
            session.send_ipmi_response(code=0x80)  # parameter not supported
        else:
            session.send_ipmi_response(data=[0x11, *values[parameter]])

    def snapshot(self) -> dict[str, Any]:
        """State and identity, as the lab's state files record them."""
        return {"address": self.address, "mac": self.mac, "hardware": asdict(self.hardware),
                "state": asdict(self.state), "faults": asdict(self.faults)}


def _extra(hardware: Hardware) -> list[str]:
    extra = [f"cpu_cores={hardware.cpu_cores}", f"memory_gb={hardware.memory_gb}",
             f"disks={hardware.disks}", f"virtualization={int(hardware.virtualization)}"]
    return extra + [f"nic={mac}" for mac in hardware.nic_macs]


class _ServerSession(serversession.ServerSession):
    """pyghmi's server session, made to survive a busy machine and a shared process.

    - When its client starts over, it forgets only itself: pyghmi drops every session of
      the client's address, and with many BMCs in one process the client's sessions with
      the *other* BMCs went too.
    - Retransmitted handshake messages get the first answer again: pyghmi drew a new
      session id (Open Session) or a new random (RAKP 1) each time, so a client whose
      first answer was only slow could never finish logging in.
    - An unknown user name is refused with RAKP 2 status "unauthorized name", as real BMCs
      do: pyghmi's server said nothing, so a client could not tell a wrong user from a
      BMC that had gone silent.
    """

    send_payload: Callable[..., Any]
    """pyghmi's method; ``_got_rakp1`` wraps it for a while, on the instance."""
    opened_by: bytes = b""
    open_response: bytes = b""
    _rakp1: bytes = b""
    _rakp2: bytes = b""

    def create_open_session_response(self, request: bytearray) -> bytearray:
        response: bytearray = super().create_open_session_response(request)
        self.opened_by, self.open_response = bytes(request), bytes(response)
        return response

    def _got_rakp1(self, data: bytes | bytearray) -> None:
        if bytes(data) == self._rakp1:
            self.send_payload(self._rakp2, constants.payload_types["rakp2"], retry=False)
            return
        sent: list[bytes] = []
        send = self.send_payload

        def capture(payload: bytes | bytearray, *args: Any, **kwargs: Any) -> Any:
            sent.append(bytes(payload))
            return send(payload, *args, **kwargs)

        self.send_payload = capture
        try:
            super()._got_rakp1(data)
            if not sent:  # no such user (or none given)
                self.send_payload(bytearray([data[0], RMCP_UNAUTHORIZED_NAME, 0, 0])
                                  + self.clientsessionid, constants.payload_types["rakp2"],
                                  retry=False)
        finally:
            del self.send_payload
        if sent:
            self._rakp1, self._rakp2 = bytes(data), sent[0]

    def _handle_ipmi_packet(self, data: bytes | bytearray, sockaddr: Any = None,
                            qent: Any = None) -> int | None:
        handlers = serversession.ipmisession.Session.bmc_handlers
        if (data[4] in (0, 2) and struct.unpack("<II", bytes(data[5:13])) == (0, 0)
                and qent is not None and qent[2] in handlers):
            handlers.get(sockaddr, {}).pop(self.bmc.port, None)
            server = handlers[qent[2]][0]
            server.pktqueue.append(qent)
            server.process_pktqueue()
            return None
        verdict: int | None = super()._handle_ipmi_packet(data, sockaddr, qent)
        return verdict


class _AddressKeyedSocket:
    """A UDP socket whose ``getsockname()[1]`` is (address, port): see ``FakeBmc``."""

    def __init__(self, sock: socket.socket):
        self._sock = sock

    def getsockname(self) -> tuple[str, tuple[str, int]]:
        name = self._sock.getsockname()
        return name[0], (name[0], name[1])

    def fileno(self) -> int:
        return self._sock.fileno()

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)
