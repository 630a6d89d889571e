/* Parse arenas (jarena.c): a cloud state page's JSON tree parsed into a slot
 * lives there, its frees cost nothing, and it can be changed, dumped and
 * dropped like any tree; everything outside a slot (other threads, other
 * trees, a slot that is full) stays on malloc. Run under ASan+UBSan by
 * make check-san: a wrong free would be caught there. */
#include <pthread.h>
#include <string.h>

#include "jarena.h"
#include "jutil.h"
#include "testutil.h"

static json_t *parse_in(int slot, const char *text)
{
	json_error_t je;
	jarena_begin(slot);
	json_t *j = json_loads(text, 0, &je);
	jarena_end();
	cr_assert_not_null(j, "%s", je.text);
	return j;
}

Test(jarena, a_page_parsed_into_a_slot_is_used_changed_and_dropped)
{
	cr_assert_eq(jarena_init(), 0);
	int slot = jarena_take();
	cr_assert_geq(slot, 0);
	json_t *j = parse_in(slot, "{\"rev\":7,\"more\":true,\"changes\":[{\"entity\":\"person\",\"id\":\"p1\","
				   "\"data\":{\"first_name\":\"Anna\",\"id\":\"p1\"}}]}");
	size_t used = jarena_used(slot);
	cr_assert_gt(used, 0, "the tree is in the arena");
	/* validation changes the tree: values replaced (malloc, outside the
	 * parse) and removed (arena: nothing to free) */
	json_t *d = json_object_get(json_array_get(json_object_get(j, "changes"), 0), "data");
	json_object_set_new(d, "first_name", json_string("ANNA"));
	json_object_del(d, "id");
	json_object_set_new(d, "active", json_true());
	cr_assert_eq(jarena_used(slot), used, "nothing allocated outside begin/end goes to the arena");
	char *txt = jdump(d);
	cr_assert_str_eq(txt, "{\"first_name\":\"ANNA\",\"active\":true}");
	free(txt); /* a dump is malloc's, freed with free() */
	json_decref(j);
	jarena_release(slot);
	cr_assert_eq(jarena_used(slot), 0);
	/* the slot is taken again and the next page parses over the last */
	int again = jarena_take();
	cr_assert_geq(again, 0);
	json_t *k = parse_in(again, "[1,2,3]");
	cr_assert_eq(json_array_size(k), 3);
	cr_assert_eq(json_integer_value(json_array_get(k, 2)), 3);
	json_decref(k);
	jarena_release(again);
}

Test(jarena, slots_are_taken_once_and_without_a_slot_malloc_serves)
{
	cr_assert_eq(jarena_init(), 0);
	int s[JARENA_SLOTS];
	for (int i = 0; i < JARENA_SLOTS; i++) {
		s[i] = jarena_take();
		cr_assert_geq(s[i], 0);
		for (int k = 0; k < i; k++)
			cr_assert_neq(s[i], s[k], "a slot is handed out once");
	}
	cr_assert_eq(jarena_take(), -1, "all taken");
	/* no slot: the page parses with malloc all the same */
	json_t *j = parse_in(-1, "{\"a\":[\"x\",\"y\"]}");
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "a"), 1)), "y");
	json_decref(j);
	for (int i = 0; i < JARENA_SLOTS; i++)
		jarena_release(s[i]);
	jarena_release(-1); /* ignored */
	int t = jarena_take();
	cr_assert_geq(t, 0, "released slots are free again");
	jarena_release(t);
}

/* A page larger than a slot: the rest of the tree goes to malloc and the
 * whole tree is right (values checked) and freed without a wrong free. */
Test(jarena, a_tree_larger_than_its_slot_goes_on_with_malloc)
{
	cr_assert_eq(jarena_init(), 0);
	enum { N = 200000 };
	size_t cap = (size_t)N * 32 + 16;
	char *text = malloc(cap), *p = text;
	cr_assert_not_null(text);
	*p++ = '[';
	for (int i = 0; i < N; i++)
		p += snprintf(p, cap - (size_t)(p - text), "%s{\"n\":%d,\"s\":\"v%d\"}", i ? "," : "", i, i);
	*p++ = ']';
	*p = '\0';
	int slot = jarena_take();
	cr_assert_geq(slot, 0);
	json_t *j = parse_in(slot, text);
	free(text);
	cr_assert_eq(json_array_size(j), N);
	for (int i = 0; i < N; i += 997) {
		json_t *o = json_array_get(j, (size_t)i);
		char want[16];
		snprintf(want, sizeof want, "v%d", i);
		cr_assert_eq(json_integer_value(json_object_get(o, "n")), i);
		cr_assert_str_eq(json_string_value(json_object_get(o, "s")), want);
	}
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(j, N - 1), "n")), N - 1);
	json_decref(j);
	jarena_release(slot);
}

static void *parse_elsewhere(void *arg)
{
	(void)arg;
	json_t *j = json_loads("{\"other\":\"thread\",\"list\":[1,2,3,4,5,6,7,8]}", 0, NULL);
	char *txt = jdump(j);
	json_decref(j);
	return txt;
}

Test(jarena, another_thread_parses_with_malloc_while_a_slot_is_on)
{
	cr_assert_eq(jarena_init(), 0);
	int slot = jarena_take();
	cr_assert_geq(slot, 0);
	jarena_begin(slot); /* this thread only */
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, parse_elsewhere, NULL), 0);
	void *txt = NULL;
	pthread_join(th, &txt);
	jarena_end();
	cr_assert_eq(jarena_used(slot), 0, "the other thread's tree is not in this thread's slot");
	cr_assert_str_eq(txt, "{\"other\":\"thread\",\"list\":[1,2,3,4,5,6,7,8]}");
	free(txt);
	jarena_release(slot);
}

/* After a pull the slots' memory goes back to the system (RSS follows the
 * load), never the memory of a slot whose tree is still in use. */
Test(jarena, trim_gives_back_free_slots_only)
{
	cr_assert_eq(jarena_init(), 0);
	jarena_trim();
	int done = jarena_take(), live = jarena_take();
	cr_assert(done >= 0 && live >= 0);
	json_decref(parse_in(done, "{\"changes\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\"}]}"));
	jarena_release(done);
	json_t *keep = parse_in(live, "{\"first_name\":\"Anna\",\"floors\":[\"3\",\"4\"]}");
	size_t freed = jarena_trim();
	cr_assert_gt(freed, 0, "the released slot's pages are given back");
	cr_assert_eq(jarena_trim(), 0, "and only once");
	/* the slot in use was left alone: its tree reads as before */
	cr_assert_str_eq(json_string_value(json_object_get(keep, "first_name")), "Anna");
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(keep, "floors"), 1)), "4");
	json_decref(keep);
	jarena_release(live);
	cr_assert_gt(jarena_trim(), 0, "released now, trimmed now");
	/* a trimmed slot parses again (fresh zero pages) */
	int again = jarena_take();
	json_t *j = parse_in(again, "[\"x\"]");
	cr_assert_str_eq(json_string_value(json_array_get(j, 0)), "x");
	json_decref(j);
	jarena_release(again);
}
