# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared helpers of the tests/ops shell tests (sourced): TAP output, a private system
# bus with the shipped lu-vfiod policy, a kexec image, example VMMs.
n=0 fail=0
ok()    { n=$((n + 1)); echo "ok $n - $*"; }
bad()   { n=$((n + 1)); echo "not ok $n - $*"; fail=1; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
note()  { printf '%s\n' "$*" | sed 's/^/# /'; }
bail()  { echo "Bail out! $*"; exit 1; }

DEST=org.luvfiod.LiveUpdate1
OBJ=/org/luvfiod/LiveUpdate1
IFACE=org.luvfiod.LiveUpdate1

# bus_start DIR POLICY: a private dbus-daemon of type "system" on DIR/bus.sock whose
# default policy is Debian's system bus default, plus the shipped lu-vfiod policy (and
# DIR/extra-policy.conf when a test needs more; DIR/services as a service directory
# for bus activation when it exists).
bus_start() {
        local dir=$1 policy=$2
        cat > "$dir/bus.conf" <<EOT
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <include>$policy</include>
$([ -f "$dir/extra-policy.conf" ] && echo "  <include>$dir/extra-policy.conf</include>")
$([ -d "$dir/services" ] && echo "  <servicedir>$dir/services</servicedir>")
</busconfig>
EOT
        rm -f "$dir/bus.sock"
        BUS_PID=$(dbus-daemon --config-file="$dir/bus.conf" --fork --print-pid) || bail "dbus-daemon did not start"
        export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$dir/bus.sock
}

# wait_name: until the daemon owns its name (10 s)
wait_name() {
        for _ in $(seq 200); do
                busctl --system status "$DEST" >/dev/null 2>&1 && return 0
                sleep 0.05
        done
        return 1
}

prop() { busctl --system get-property "$DEST" "$OBJ" "$IFACE" "$1" | sed -e 's/^[a-z]* //' -e 's/^"\(.*\)"$/\1/'; }

# wait_prop NAME VALUE [TRIES]
wait_prop() {
        for _ in $(seq "${3:-400}"); do
                [ "$(prop "$1")" = "$2" ] && return 0
                sleep 0.05
        done
        return 1
}

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

# stage_for_nobody PROGRAM: prints a copy of PROGRAM under $dir that uid nobody can run (the
# build directory may sit below a 0700 directory such as root's home)
stage_for_nobody() {
        mkdir -p "$dir/bin" && chmod 755 "$dir/bin" && install -m 755 "$1" "$dir/bin/" && echo "$dir/bin/$(basename "$1")"
}

# last_update: the LastUpdate JSON as gdbus prints it (JSON quotes unescaped)
last_update() { gdbus call --system -d "$DEST" -o "$OBJ" -m org.freedesktop.DBus.Properties.Get "$IFACE" LastUpdate; }

# kernel_image FILE: a 4 KiB image with the bzImage magic "HdrS" at 0x202 that the kexec loader checks
kernel_image() { { head -c 514 /dev/zero; printf HdrS; head -c 3578 /dev/zero; } > "$1"; }

# start_vmm VM [extra options]: the example VMM $vmm for VM (device vfio<N> for vmN); sets last_vmm
start_vmm() {
        local vm=$1; shift
        rm -f "$dir/$vm.ready"
        "$vmm" --socket="$dir/vmm.sock" --vm="$vm" --vfio=/dev/vfio/devices/vfio${vm#vm} --ready-file="$dir/$vm.ready" \
                --state-file="$dir/$vm.state" "$@" >>"$dir/vmm-$vm-$boot.log" 2>&1 &
        last_vmm=$!
}

# wait_ready VM: until its VMM has handed everything over (10 s)
wait_ready() { for _ in $(seq 200); do [ -e "$dir/$1.ready" ] && return 0; sleep 0.05; done; return 1; }
