/* Lift buttons numbered from the building's ground floor and floor start
 * (drivers/bus.c lift_floor_label), as an installer wires them: button 1 is
 * the lowest floor the lift serves, each next button the floor above. */
#include <criterion/criterion.h>

#include "bus.h"

static const char *label(const char *ground, int has_start, int start, int channel)
{
	static char out[8];
	if (lift_floor_label(ground, has_start, start, channel, out))
		return "-";
	return out;
}

Test(lift, no_building_settings_counts_from_one)
{
	cr_assert_str_eq(label(NULL, 0, 0, 1), "1");
	cr_assert_str_eq(label("", 0, 0, 5), "5");
	cr_assert_str_eq(label(NULL, 0, 0, 128), "128");
	cr_assert_str_eq(label(NULL, 0, 0, 129), "-", "past the top floor a button serves nothing");
	cr_assert_str_eq(label(NULL, 0, 0, 0), "-");
}

Test(lift, basements_then_ground_levels_then_floors)
{
	/* two basements, ground levels G0 and G1, then floor 1 */
	const char *want[] = { "-2", "-1", "G0", "G1", "1", "2", "3" };
	for (int c = 1; c <= 7; c++)
		cr_assert_str_eq(label("G1", 1, -2, c), want[c - 1], "channel %d", c);
	/* G2: three ground levels */
	cr_assert_str_eq(label("G2", 0, 0, 1), "G0");
	cr_assert_str_eq(label("G2", 0, 0, 3), "G2");
	cr_assert_str_eq(label("G2", 0, 0, 4), "1");
	cr_assert_str_eq(label("G0", 1, 0, 2), "1", "a floor start of 0 is the ground level");
	cr_assert_str_eq(label("G0", 1, 3, 1), "3", "a lift starting above the ground skips it");
}

Test(lift, numbered_ground_floor)
{
	/* ground floor 0 (European numbering): 0 exists */
	cr_assert_str_eq(label("0", 1, -1, 1), "-1");
	cr_assert_str_eq(label("0", 1, -1, 2), "0");
	cr_assert_str_eq(label("0", 1, -1, 3), "1");
	cr_assert_str_eq(label("0", 0, 0, 1), "0", "no floor start: button 1 is the ground floor");
	/* ground floor 1 (US numbering): no floor 0 between the basement and 1 */
	cr_assert_str_eq(label("1", 1, -1, 1), "-1");
	cr_assert_str_eq(label("1", 1, -1, 2), "1");
	cr_assert_str_eq(label("1", 1, -10, 11), "1");
	cr_assert_str_eq(label("1", 1, -12, 1), "-", "below -10 is no floor");
}
