/* The D-Bus face of canfleetd (io.canfleet.Gateway1, daemon/io.canfleet.Gateway1.xml): all of the sd-bus
 * code lives behind this. */
#pragma once

#include "manager.h"

#define CF_BUS_NAME                "io.canfleet.Gateway1"
#define CF_OBJECT_ROOT             "/io/canfleet/Gateway1"
#define CF_ERROR_INVALID_IMAGE     "io.canfleet.Gateway1.Error.InvalidImage"
#define CF_ERROR_HARDWARE_MISMATCH "io.canfleet.Gateway1.Error.HardwareMismatch"
#define CF_ERROR_NO_SUCH_NODE      "io.canfleet.Gateway1.Error.NoSuchNode"
#define CF_ERROR_NO_SUCH_BUS       "io.canfleet.Gateway1.Error.NoSuchBus"
#define CF_ERROR_BUSY              "io.canfleet.Gateway1.Error.Busy"
#define CF_ERROR_NOT_CANCELLABLE   "io.canfleet.Gateway1.Error.NotCancellable"
#define CF_ERROR_NOT_TRUSTED       "io.canfleet.Gateway1.Error.NotTrusted"
#define CF_ERROR_ROLLBACK          "io.canfleet.Gateway1.Error.Rollback"

/* Connect to the system bus ($DBUS_SYSTEM_BUS_ADDRESS when set), publish the objects, take the
 * name. Declared with the rest of the manager's interface in manager.h:
 *   int manager_connect_bus(Manager *m); */
