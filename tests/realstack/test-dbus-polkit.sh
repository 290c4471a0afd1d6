#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# D-Bus activation and polkit on the real system bus of the realstack machine: with the daemon
# stopped, a call to org.luvfiod.LiveUpdate1 makes the real dbus-daemon activate it through
# systemd (SystemdService=lu-vfiod.service); the real polkitd decides lu-vfioctl's calls: an
# unprivileged user is refused (exit 3), a user allowed by a polkit rules file is accepted, and
# an operator of the sudo group (the shipped policy's auth_admin: Debian's polkit takes the sudo
# group as administrators) is asked for his password by polkit's text agent, pkttyagent, on his
# terminal, and authorized or refused by what he types.
#   test-dbus-polkit.sh LUO_EMU BUILD_ROOT EXAMPLE_VMM     (env RS_DIR)
set -u
LUO_EMU=$1 BUILD_ROOT=$2 RS_VMM=$3
. "$(dirname "$0")/machine.sh"
mkdir -p "$RS_DIR"
rs_setup
chroot "$RS_DIR/root" sh -c 'useradd -m alice && useradd -m bob && useradd -m carol && useradd -m -G sudo dave &&
        echo "dave:correct horse" | chpasswd' || bail "cannot add the test users"
mkdir -p "$RS_DIR/root/etc/polkit-1/rules.d"
cat >"$RS_DIR/root/etc/polkit-1/rules.d/60-lu-vfiod-test.rules" <<'EOT'
// tests/realstack: bob operates live updates; carol may prepare/cancel but not commit
polkit.addRule(function(action, subject) {
        if (action.id.indexOf("org.luvfiod.LiveUpdate1.") == 0 && subject.user == "bob")
                return polkit.Result.YES;
        if (action.id == "org.luvfiod.LiveUpdate1.prepare" && subject.user == "carol")
                return polkit.Result.YES;
});
EOT
rs_boot --vfio=1
rs_wait_up 90 || bail "the machine's systemd did not finish booting"
rs_exec systemctl stop lu-vfiod.service
check "lu-vfiod.service is stopped" test "$(rs_unit_prop lu-vfiod.service ActiveState)" = inactive
st=$(rs_exec busctl get-property org.luvfiod.LiveUpdate1 /org/luvfiod/LiveUpdate1 org.luvfiod.LiveUpdate1 State)
check "a call to org.luvfiod.LiveUpdate1 is answered ($st)" test "$st" = 's "idle"'
check "... by lu-vfiod.service, which the bus activated" test "$(rs_unit_prop lu-vfiod.service ActiveState)" = active
check "the real dbus-daemon logged the activation through systemd" \
        rs_exec sh -c "journalctl -u dbus -o cat | grep -q \"Activating via systemd: service name='org.luvfiod.LiveUpdate1'\""

rs_run lu-vfioctl cancel >/dev/null 2>&1; st=$?
check "root: cancel reaches the core without polkit (nothing to cancel: exit $st = 4)" test "$st" = 4
check "... polkitd was not even started for root" test "$(rs_unit_prop polkit.service ActiveState)" = inactive

rs_exec systemctl start vmm@vm0.service
rs_wait rs_exec test -e /run/vmm-vm0.ready || bail "the VMM service did not hand over"
out=$(rs_run -p User=alice lu-vfioctl --no-ask-password prepare /boot/vmlinuz-next 2>&1); st=$?
note "alice: $out"
check "polkitd refuses the unprivileged user alice (lu-vfioctl exit $st = 3)" test "$st" = 3
check "... and the update stays idle" test "$(rs_prop State)" = idle
out=$(rs_run -p User=alice lu-vfioctl --json --no-ask-password prepare /boot/vmlinuz-next 2>/dev/null)
check "--json names the D-Bus error InteractiveAuthorizationRequired" \
        grep -q '"error":"org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"' <<<"$out"
check "the real polkitd answered (it was bus-activated)" test "$(rs_unit_prop polkit.service ActiveState)" = active
out=$(rs_run -p User=bob lu-vfioctl --no-ask-password prepare /boot/vmlinuz-next 2>&1); st=$?
note "bob: $(tail -n1 <<<"$out")"
check "polkitd accepts bob, allowed by a rules file (exit $st)" test "$st" = 0
check "... and the update is prepared" test "$(rs_prop State)" = prepared
out=$(rs_run -p User=alice lu-vfioctl --no-ask-password cancel 2>&1); st=$?
check "alice cannot cancel it either (exit $st)" test "$st" = 3
out=$(rs_run -p User=carol lu-vfioctl --no-ask-password commit 2>&1); st=$?
note "carol: $out"
check "carol, allowed .prepare only, cannot commit (the .commit action; exit $st)" test "$st" = 3
check "... and the update stays prepared" test "$(rs_prop State)" = prepared
out=$(rs_run -p User=carol lu-vfioctl --no-ask-password cancel 2>&1); st=$?
check "carol may cancel (the .prepare action; exit $st)" test "$st" = 0 -a "$(rs_prop State)" = idle
rs_run -p User=bob lu-vfioctl --no-ask-password prepare /boot/vmlinuz-next >/dev/null 2>&1
out=$(rs_run -p User=bob lu-vfioctl --no-ask-password cancel 2>&1); st=$?
check "bob cancels it (exit $st)" test "$st" = 0 -a "$(rs_prop State)" = idle
out=$(rs_run -p User=alice lu-vfioctl status 2>&1); st=$?
check "reading the status needs no authorization (alice, exit $st)" test "$st" = 0


# --- interactive authorization: dave, an administrator by the sudo group, runs lu-vfioctl at a
# terminal of his own (a pty, in no logind session, so without an agent of the session's);
# lu-vfioctl starts polkit's text agent for its own process, and polkitd, asked by the daemon
# about lu-vfioctl's bus name, finds that agent and has it ask dave for his password.
# as_dave_at_terminal PASSWORD LU-VFIOCTL-ARGS...: lu-vfioctl's exit status; the terminal in $RS_DIR/tty.log
as_dave_at_terminal() {
        local pw=$1 pid; shift
        pid=$(rs_init) || return 125
        "$here_rs/pty-answer.py" --timeout 60 --secret --expect 'Password: *$' --send "$pw" -- \
                nsenter -t "$pid" -m -p -n -u -i -C -r -w -- /usr/bin/env -i PATH=/usr/bin:/bin TERM=dumb \
                setpriv --reuid=dave --regid=dave --init-groups -- lu-vfioctl "$@" >"$RS_DIR/tty.log" 2>&1
}
as_dave_at_terminal "correct horse" prepare /boot/vmlinuz-next; st=$?
note "dave's terminal: $(tr -d '\r' <"$RS_DIR/tty.log" | grep -v '^$' | tr '\n' '|')"
check "the agent on dave's terminal was asked to authenticate for org.luvfiod.LiveUpdate1.prepare" \
        grep -q "AUTHENTICATING FOR org.luvfiod.LiveUpdate1.prepare" "$RS_DIR/tty.log"
check "... as dave, an administrator by the sudo group (auth_admin)" grep -q "Authenticating as: dave" "$RS_DIR/tty.log"
check "dave typed his password: polkitd authorized lu-vfioctl prepare (exit $st)" test "$st" = 0
check "... and the update is prepared" test "$(rs_prop State)" = prepared
as_dave_at_terminal "wrong horse" cancel; st=$?
check "dave typed a wrong password: cancel refused (exit $st = 3)" test "$st" = 3
check "... the agent reported the failure" grep -q "AUTHENTICATION FAILED" "$RS_DIR/tty.log"
check "... and the update stays prepared" test "$(rs_prop State)" = prepared
out=$(rs_run -p User=dave lu-vfioctl cancel 2>&1); st=$?
note "dave with no terminal: $out"
check "dave allowing interaction but with no terminal, so no agent: refused (exit $st = 3)" test "$st" = 3
as_dave_at_terminal "correct horse" --no-ask-password cancel; st=$?
check "dave at his terminal with --no-ask-password: refused, no password asked (exit $st = 3)" \
        test "$st" = 3 -a "$(grep -c 'Password:' "$RS_DIR/tty.log")" = 0
as_dave_at_terminal "correct horse" cancel; st=$?
check "dave at his terminal again: cancel authorized (exit $st)" test "$st" = 0 -a "$(rs_prop State)" = idle

rs_poweroff
echo "1..$n"
exit $fail
