/* A simulated bus attached to a real (or virtual) SocketCAN interface through a raw CAN socket. */
#pragma once

#include <stdint.h>

#include "sim-bus.h"

/*
 * The socket receives only the CRO ids of the bus's nodes (kernel filters); every frame a node
 * sends is written to the interface. The interface going down (ENETDOWN, ENOBUFS when the queue is
 * full) is an ordinary event: frames meanwhile are lost, as on a real bus, and the socket is
 * polled again after a short pause.
 */
struct socketcan_port;

/* -EAFNOSUPPORT without kernel CAN support, -ENODEV for an unknown interface. */
int socketcan_port_new(struct socketcan_port **ret, const char *ifname, struct sim_bus *bus);
struct socketcan_port *socketcan_port_free(struct socketcan_port *p);

int socketcan_port_fd(const struct socketcan_port *p); /* -1 while pausing after an error */
void socketcan_port_io(struct socketcan_port *p, short revents);
uint64_t socketcan_port_deadline(const struct socketcan_port *p);
void socketcan_port_timer(struct socketcan_port *p, uint64_t now_us);
