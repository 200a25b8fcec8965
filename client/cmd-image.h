/* canfleetctl's offline image commands: `image pack` and `image inspect`, no daemon needed. */
#pragma once

/* argv[0] is "image", argv[1] the subcommand. Exit code: 0 done / image valid, 1 bad input or invalid
 * image, 2 usage error. */
int cmd_image(int argc, char **argv);
