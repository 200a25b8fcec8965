/* The group pass of one bus (docs/design.md §7): the joined nodes of a job get the image once, as
 * group frames on the bus's group id, paced to the bus's frame time and max_load_percent. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct FlashJob FlashJob;
typedef struct CanBus CanBus;
typedef struct GroupPass GroupPass;

/*
 * A bus has at most one GroupPass, owned by one job: every node that joined the bus's group id
 * receives every group frame, so nodes of another job on the same bus would be written with the
 * wrong image. Nodes of other jobs use plain CCP while the bus is taken (group_attach() refuses).
 *
 * A member (FlashJob) goes through:
 *   attached  (group_attach, before its GROUP_JOIN is sent: the bus is reserved for the job)
 *   waiting   (group_enlist: joined, wants the slots from `from` on; its session is idle)
 *   riding    (the pass started with it; flash_job_group_done() is called when the pass ends)
 * and leaves with group_detach() (failed, lost, restarted, finished its repair, cancelled).
 *
 * A pass starts when nodes wait and no other node of the job on the bus is still on its way to the
 * join (connecting, unlocking, erasing with a session slot): one pass serves all of them. It starts
 * at the lowest slot a waiting node needs (after a restart of canfleetd the nodes already hold a
 * prefix) and sends every slot that is not all 0xFF, in order; when a rider is in block mode
 * (FlashJob.verify, canfleet/ccp.h "Checked blocks") each block's check frame follows its last slot,
 * and nodes without block mode ignore it. Nodes that join while a pass runs
 * wait for the next one. Flow control: never more than a few frames in the transport's queue, and
 * no more frames than the bus carries in the elapsed time at max_load_percent (the rest of the bus
 * stays for CCP answers); sd-event timers pace it, nothing sleeps.
 */
enum group_member_state {
        GROUP_NONE,
        GROUP_ATTACHED,
        GROUP_WAITING,
        GROUP_RIDING,
};

/* Reserve the bus's group for f's job: false when another job holds it. */
bool group_attach(FlashJob *f);
/* f joined: it waits for the next pass from slot `from` on. */
int group_enlist(FlashJob *f, uint16_t from);
/* f leaves its pass (any state); the pass is freed when its last member leaves. */
void group_detach(FlashJob *f);
/* Something changed on the bus (a node failed, fell back to plain CCP): maybe start a pass. */
void group_kick(CanBus *b);
/* The bus goes away. */
void group_bus_done(CanBus *b);

/* flash-job.c: the pass f rode is over; its GAP repair starts. */
void flash_job_group_done(FlashJob *f);
