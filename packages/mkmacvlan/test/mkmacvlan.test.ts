// mkmacvlan natively (this kernel has macvlan): the launcher suite, a
// namespace of one's own per launch, on parents inside the test's own
// namespace.
import { test } from 'uvu';
import { launcherSuite } from '../../../tools/test/lib/launcher.js';

launcherSuite({ prog: 'mkmacvlan', wrongMode: ['l3s', /-m: expected bridge, private, vepa, passthru/], routesViaGateway: true });

test.run();
