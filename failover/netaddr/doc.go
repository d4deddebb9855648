// Package netaddr moves a cluster's service address between its nodes over
// real host networking: the MoveAddress half of failover.Actions.
//
// # Design
//
// The cluster lives in one network namespace of its own (Create, or Open
// one made by `ip netns add`); each node's vmm runs there with
// `vmm run --net tap:tvN`, so its tap interface is made inside it. Each
// node has its own link and its own /24 (NodeAddrs: node i is tv<i>, host
// end 10.77.<i+1>.1/24, guest eth0 10.77.<i+1>.2/24), and every guest
// also holds the service address (DefaultService, 10.77.0.100/32) on its
// loopback. No link's subnet holds the service address, so the only way
// to it is one host route in the cluster namespace:
//
//	10.77.0.100/32 dev tvACTIVE scope link
//
// and whichever tap that route names is the guest a client in the
// namespace reaches. The guest answers ARP for the service address on
// eth0 (Linux's default arp_ignore=0 answers for any local address) and
// replies from it to the host end's address, which is on-link.
//
// Mover.MoveAddress points the route at another node's link with one
// RTM_NEWROUTE carrying NLM_F_REPLACE: the kernel swaps the route in place,
// so a client never sees a moment without one (no ENETUNREACH, as a
// delete and add would give). It also drops the neighbour entries for the
// service address on the new link (before the route points there) and on
// the old one (after), so no MAC learnt earlier is used for it: a node
// that comes back with another MAC is asked afresh. Connections open to
// the old node at the move are lost (their next segment reaches the new
// node, which resets them); fencing keeps the old node from answering.
//
// The route goes with its link: when a vmm exits its tap is deleted and a
// route through it with it (CurrentLink then says ErrNoRoute). A node
// whose vmm is restarted needs SetupLink again before the address can
// move to it; a move to a link that is absent or down is an error that
// leaves the route as it was.
//
// # The guest's side
//
// A node's guest runs, with the project's busybox (it has ip):
//
//	ip link set lo up
//	ip addr add 10.77.0.100/32 dev lo
//	ip addr add 10.77.1.2/24 dev eth0
//	ip link set eth0 up
//
// (Node.GuestCommands writes this line for a node; `ifconfig eth0
// 10.77.1.2 netmask 255.255.255.0 up; ifconfig lo:0 10.77.0.100 netmask
// 255.255.255.255 up` is the same with ifconfig.) The host side is
// Namespace.SetupLink(ctx, "tv0", node.Host) once the vmm has made the
// tap.
//
// Traffic stays inside the namespaces: tests send only to addresses in
// namespaces they made.
package netaddr
