# switch.sh - the LAN switch of a namespace cluster: a network namespace of its own holding the
# bridge (and, once wired, the bridge-side veth ends). There, bridged frames skip the IP
# firewall hooks: a switch does not filter, and with br_netfilter loaded (docker loads it) a
# bridge in the root namespace would hand every frame to the host's iptables FORWARD chain,
# whose DROP policy would split the cluster, and to its conntrack (35-40 % of a sender's CPU
# in a profile). The root namespace is not touched. Source it, then:
#   switch_up NS BRIDGE [MCAST_SNOOPING (0|1, default 0)]
switch_up() {
  local ns=$1 br=$2 snoop=${3:-0} k
  ip netns add "$ns" || return 1
  for k in iptables ip6tables arptables; do  # present only where br_netfilter is loaded
    nsenter --net="/run/netns/$ns" sysctl -qw "net.bridge.bridge-nf-call-$k=0" 2>/dev/null || true
  done
  nsenter --net="/run/netns/$ns" ip link add "$br" type bridge &&
    nsenter --net="/run/netns/$ns" ip link set "$br" type bridge mcast_snooping "$snoop" stp_state 0 &&
    nsenter --net="/run/netns/$ns" ip link set "$br" up
}
