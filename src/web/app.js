// calltrail's call-history page. Plain JavaScript, no build step, no third-party code.
//
// The page is a view of the API: the address bar holds the same filter parameters as
// GET /api/v1/calls, so a view can be bookmarked and shared, and the server decides what each
// person sees. Rows arrive in pages that follow the API's cursor and live over Server-Sent Events.
'use strict';

// ---------------------------------------------------------------------------------------------
// Words. Russian labels are the reference product's.

const WORDS = {
  ru: {
    title: 'История звонков', calls: 'Звонки', sign_in: 'Войти', login: 'Логин', password: 'Пароль',
    sign_in_sub: 'История звонков контакт-центра', sign_out: 'Выйти',
    bad_login: 'Неверный логин или пароль', throttled: 'Слишком много попыток. Попробуйте позже.',
    settings: 'Настройки', filters: 'Фильтры', view: 'Вид', apply: 'Применить', reset: 'Сбросить', cancel: 'Отмена',
    save: 'Сохранить', defaults: 'По умолчанию', close: 'Закрыть',
    pause: 'Пауза', resume: 'Продолжить', waiting: n => `${n} ${plural(n, 'новый звонок', 'новых звонка', 'новых звонков')}`,
    live_on: 'Обновление в реальном времени', live_paused: 'Пауза', live_off: 'Нет связи, переподключение…',
    found: 'Найдено звонков:', loading: 'Загрузка…', empty: 'Звонков не найдено. Измените период или фильтры.',
    the_end: 'Больше звонков нет', retry: 'Повторить', error: 'Ошибка',
    no_access: 'История звонков вам недоступна. Доступ включает администратор КЦ.',
    export: 'Экспортировать', export_xlsx: 'Экспортировать как XLS файл', export_csv: 'Экспортировать как CSV файл',
    export_title: 'Выгрузка', job_queued: 'В очереди…', job_progress: (a, b) => `${a} из ${b} строк`, job_done: n => `Готово: ${n} строк.`,
    job_failed: 'Не удалось', job_cancelled: 'Отменено', download: 'Скачать',
    export_qm: 'Выгрузить в Tinkoff QM', qm_title: 'Выгрузка в Tinkoff QM', qm_start: 'Выгрузить',
    qm_confirm: n => `Звонков по текущим фильтрам: ${n}`,
    qm_confirm_note: 'Звонки без записи будут пропущены. Звонки, которые уже были выгружены, повторно не отправляются.',
    qm_state: { queued: 'В очереди', running: 'Идёт выгрузка', done: 'Готово', failed: 'Не удалось', cancelled: 'Отменено' },
    qm_progress: (a, b) => `${a} из ${b} звонков`,
    qm_sent: 'Отправлено', qm_already: 'Уже были отправлены', qm_skipped: 'Пропущено — нет записи', qm_failed: 'Ошибки', qm_pending: 'Ожидают',
    qm_stop: 'Остановить выгрузку', qm_hide_hint: 'Выгрузка продолжится в фоне', qm_rerun: 'Отправить повторно только ошибки',
    qm_rerun_rest: 'Отправить повторно ошибки и неотправленные',
    qm_jobs: 'Выгрузки в QM', qm_jobs_none: 'Выгрузок ещё не было', qm_jobs_open: 'Открыть выгрузку',
    qm_jobs_cols: { created: 'Начата', state: 'Состояние', sent: 'Отправлено', failed: 'Ошибки', total: 'Всего' },
    qm_cols: { call: 'Звонок', outcome: 'Результат', attempts: 'Попыток', status: 'HTTP', error: 'Причина', correlation: 'x-correlation-id' },
    qm_filter: 'Показать звонки',
    qm_filters: { '': 'Все', sent: 'Отправлены', already_sent: 'Уже были отправлены', skipped: 'Пропущены', failed: 'Ошибки', pending: 'Ожидают' },
    qm_outcome: { pending: 'Ожидает', sending: 'Отправляется', sent: 'Отправлен', already_sent: 'Уже был отправлен', skipped: 'Пропущен', failed: 'Ошибка' },
    qm_more: 'Показать ещё', qm_none: 'Таких звонков нет',
    calendar: 'Календарь', custom: 'Произвольный период', date_from: 'С', date_to: 'По',
    today: 'Сегодня', yesterday: 'Вчера', last_7_days: 'Последние 7 дней', last_30_days: 'Последние 30 дней',
    this_week: 'Эта неделя', this_month: 'Этот месяц', last_month: 'Прошлый месяц', all_time: 'Всё время',
    f_type: 'Тип', f_number: 'Номер', f_talk: 'Длительность разговора', f_groups: 'Группы', f_operators: 'Операторы',
    f_queues: 'Очереди', f_results: 'Результаты попыток', f_codes: 'Коды завершения', f_tags: 'Теги',
    f_scenarios: 'Сценарии', f_campaigns: 'Кампании', f_topics: 'Тематики',
    all: 'Все', incoming: 'Входящий', outgoing: 'Исходящий', incoming_pl: 'Входящие', outgoing_pl: 'Исходящие',
    automated: 'Автоматизированные', operator_sc: 'Операторские',
    number_hint: 'Часть номера звонящего или вызываемого абонента', number_short: 'Введите минимум 3 символа',
    talk_from: 'от', talk_to: 'до', talk_hint: 'м:сс или ч:мм:сс, от 0 до 24 ч', talk_bad: 'Укажите время от 0:00 до 24:00:00',
    talk_order: '«от» больше, чем «до»',
    search: 'Поиск', selected: n => `выбрано: ${n}`, more: n => `и ещё ${n} — уточните поиск`, nothing: 'Ничего не найдено',
    columns_hint: 'Выберите столбцы таблицы. Выбор сохраняется для вашей учётной записи.',
    columns_none: 'Выберите хотя бы один столбец',
    softphone: 'софтфон', softphone_tip: 'Исходящий звонок с софтфона',
    callback_tip: 'Перезвонить', notes_n: n => `${n} ${plural(n, 'заметка', 'заметки', 'заметок')}`, hide: 'Свернуть',
    play: 'Прослушать', no_recording: 'Запись недоступна', has_recording: 'Есть запись',
    rec_title: 'Запись разговора', rec_download: 'Скачать запись', rec_pending: n => `Запись загружается из телефонии (попыток: ${n})`,
    rec_failed: e => `Не удалось получить запись: ${e}`, rec_none: 'Записи нет',
    rec_start: 'Начало записи', rec_end: 'Конец записи', rec_span: 'Идёт запись',
    log: 'Лог звонка', log_hide: 'Скрыть лог', log_lines: 'Строки лога телефонии', log_no_lines: 'Телефония не прислала строк лога',
    log_copy: 'Скопировать ссылку на лог', log_copied: at => `Ссылка скопирована. Действует до ${at}`,
    log_made: at => `Ссылка действует до ${at}`, log_revoke: 'Отозвать ссылки', log_revoked: n => `Отозвано ссылок: ${n}`,
    ev_time: 'Время', ev_event: 'Событие', ev_source: 'Источник', ev_detail: 'Подробности', ev_fields: 'поля',
    ev: {
      created: 'Звонок записан', updated: 'Звонок изменён', recording_requested: 'Запрошена запись',
      recording_stored: 'Запись сохранена', recording_retry: 'Повтор загрузки записи', recording_failed: 'Запись не получена',
      recording_deleted: 'Запись удалена по сроку хранения', log_link_created: 'Создана ссылка на лог',
      log_link_revoked: 'Ссылки на лог отозваны',
    },
    account: 'Аккаунт', keep_calls: 'Хранить звонки, дней', keep_recordings: 'Хранить записи, дней',
    keep_hint: 'Пусто — хранить всегда. Удаление выполняется в фоне и попадает в журнал аудита.',
    restricted_rec: 'Записи для супервизоров и операторов',
    ra_download: 'Слушать и скачивать', ra_play: 'Только слушать', ra_none: 'Нет доступа',
    saved: 'Сохранено', keep_bad: 'Укажите число дней от 1 до 36500 или оставьте поле пустым',
    qm: 'Tinkoff QM', qm_base_url: 'Адрес системы QM', qm_api_key: 'API-ключ', qm_key_keep: 'Пусто — оставить текущий ключ',
    qm_language: 'Язык звонков (код, например ru)', qm_channel: 'Канал оператора в записи', qm_left: 'Левый канал', qm_right: 'Правый канал',
    qm_active: 'Интеграция активна', qm_active_hint: 'Пока интеграция активна, владелец, администраторы и менеджеры выгружают звонки из меню «Экспортировать».',
    qm_connect: 'Проверить подключение', qm_connect_ok: 'Подключение работает',
    qm_connected: at => `Подключено ${at}`, qm_not_connected: 'Не подключено', qm_key_again: 'Ключ нужно ввести заново',
    qm_unreachable: 'Этот адрес доступен только с этой машины: QM не сможет скачать записи. Запустите calltrail с параметром --public-url — адресом, доступным из QM.',
    qm_links: url => `Записи звонков QM скачивает по подписанным ссылкам с адреса ${url}… — он должен быть доступен из QM (параметр --public-url).`,
    ingest: 'Приём звонков', in_source: 'Источник', in_accepted: 'Новые', in_updated: 'Обновлено', in_duplicates: 'Повторы',
    in_pending: 'Ждут звонка', in_skipped: 'Пропущено', in_rejected: 'Отклонено', in_last: 'Последний приём',
    in_none: 'Звонки ещё не поступали.', in_rejections: 'Отклонённые данные', in_no_rejections: 'Отклонённых данных нет.',
    in_show: 'Показать', in_hide: 'Скрыть', in_replay: 'Отправить повторно', in_replayed: at => `Отправлено повторно ${at}`,
    in_not_replayable: 'Строка файла: исправьте файл и импортируйте его снова', in_refresh: 'Обновить', in_import: 'Импорт',
    pbx: 'Настройки АТС', pbx_own: 'Свои внешние номера (по одному в строке)', pbx_digits: 'Внутренний номер — до стольких цифр',
    pbx_contexts: 'Контексты входящих извне (через запятую)', pbx_internal: 'Звонки между своими номерами',
    pbx_int_outgoing: 'Хранить как исходящие звонящего', pbx_int_skip: 'Не хранить', pbx_tz: 'Часовой пояс АТС (пусто — как у аккаунта)',
    pbx_rec: 'Адрес записей АТС ({name} — имя файла, {path} — путь)', pbx_hint: 'Применяется к звонкам, принятым после сохранения.',
    details: 'Информация о звонке', flow: 'Смотреть схему звонка', flow_hide: 'Скрыть схему звонка', flow_empty: 'Схема звонка не записана',
    d_external: 'Внешний ID', d_kind: 'Тип звонка', d_group: 'Группа', d_dial: 'Начало дозвона', d_answered: 'Ответ',
    d_scenario: 'Запуск сценария', d_amd: 'Автоответчик обнаружен', d_ended: 'Окончание', d_notes: 'Заметки',
    k_incoming: 'Входящий', k_softphone_outgoing: 'Исходящий с софтфона', k_auto_campaign: 'Автоматизированная кампания',
    k_operator_campaign: 'Операторская кампания',
    tz: 'Часовой пояс', lang: 'Язык',
    role_owner: 'Владелец', role_admin: 'Администратор', role_manager: 'Менеджер', role_supervisor: 'Супервизор', role_operator: 'Оператор',
    col: {
      time: 'Время', type: 'Тип', from: 'Звонок с', to: 'Звонок к', operator: 'Оператор', queue: 'Очередь',
      ring_duration: 'Длительность дозвона', talk_duration: 'Длительность разговора', recording: 'Запись', price: 'Цена',
      scenario: 'Сценарий', campaign: 'Кампания', result: 'Результат попытки', completion_code: 'Код завершения',
      attempts: 'Попытки', tags: 'Теги', topics: 'Тематики', notes: 'Заметки',
    },
    result: {
      other_error: 'Ошибка дозвона', unavailable: 'Номер недоступен', request_cancelled: 'Запрос отменен',
      voicemail: 'Автоответчик', invalid_number: 'Неправильный номер', busy: 'Номер занят', no_answer: 'Абонент не отвечает',
      answered: 'Вызов принят', insufficient_funds: 'Недостаточно средств', lost_by_operator: 'Потерян оператором',
      rejected: 'Вызов отклонен', blocked_dnc: 'Заблокирован DNC', abandoned: 'Брошенный', ended_in_ivr: 'Завершен в IVR',
    },
  },
  en: {
    title: 'Call history', calls: 'Calls', sign_in: 'Sign in', login: 'Login', password: 'Password',
    sign_in_sub: 'Contact-center call history', sign_out: 'Sign out',
    bad_login: 'Wrong login or password', throttled: 'Too many attempts. Try again later.',
    settings: 'Settings', filters: 'Filters', view: 'View', apply: 'Apply', reset: 'Reset', cancel: 'Cancel',
    save: 'Save', defaults: 'Defaults', close: 'Close',
    pause: 'Pause', resume: 'Resume', waiting: n => `${n} new ${n === 1 ? 'call' : 'calls'}`,
    live_on: 'Live updates', live_paused: 'Paused', live_off: 'Disconnected, reconnecting…',
    found: 'Calls found:', loading: 'Loading…', empty: 'No calls found. Change the period or the filters.',
    the_end: 'No more calls', retry: 'Retry', error: 'Error',
    no_access: 'Call history is not available to you. An administrator can turn access on.',
    export: 'Export', export_xlsx: 'Export as XLSX file', export_csv: 'Export as CSV file',
    export_title: 'Export', job_queued: 'Queued…', job_progress: (a, b) => `${a} of ${b} rows`, job_done: n => `Done: ${n} rows.`,
    job_failed: 'Failed', job_cancelled: 'Cancelled', download: 'Download',
    export_qm: 'Upload to QM', qm_title: 'Upload to Tinkoff QM', qm_start: 'Upload',
    qm_confirm: n => `Calls matching the current filters: ${n}`,
    qm_confirm_note: 'Calls without a recording are skipped. Calls uploaded before are not sent again.',
    qm_state: { queued: 'Queued', running: 'Uploading', done: 'Done', failed: 'Failed', cancelled: 'Cancelled' },
    qm_progress: (a, b) => `${a} of ${b} calls`,
    qm_sent: 'Sent', qm_already: 'Sent before', qm_skipped: 'Skipped: no recording', qm_failed: 'Errors', qm_pending: 'Waiting',
    qm_stop: 'Stop the upload', qm_hide_hint: 'The upload goes on in the background', qm_rerun: 'Send only the errors again',
    qm_rerun_rest: 'Send the errors and the unsent calls again',
    qm_jobs: 'QM uploads', qm_jobs_none: 'No uploads yet', qm_jobs_open: 'Open the upload',
    qm_jobs_cols: { created: 'Started', state: 'State', sent: 'Sent', failed: 'Errors', total: 'Total' },
    qm_cols: { call: 'Call', outcome: 'Outcome', attempts: 'Attempts', status: 'HTTP', error: 'Reason', correlation: 'x-correlation-id' },
    qm_filter: 'Show calls',
    qm_filters: { '': 'All', sent: 'Sent', already_sent: 'Sent before', skipped: 'Skipped', failed: 'Errors', pending: 'Waiting' },
    qm_outcome: { pending: 'Waiting', sending: 'Sending', sent: 'Sent', already_sent: 'Sent before', skipped: 'Skipped', failed: 'Error' },
    qm_more: 'Show more', qm_none: 'No such calls',
    calendar: 'Calendar', custom: 'Custom range', date_from: 'From', date_to: 'To',
    today: 'Today', yesterday: 'Yesterday', last_7_days: 'Last 7 days', last_30_days: 'Last 30 days',
    this_week: 'This week', this_month: 'This month', last_month: 'Last month', all_time: 'All time',
    f_type: 'Type', f_number: 'Number', f_talk: 'Talk duration', f_groups: 'Groups', f_operators: 'Operators',
    f_queues: 'Queues', f_results: 'Attempt results', f_codes: 'Completion codes', f_tags: 'Tags',
    f_scenarios: 'Scenarios', f_campaigns: 'Campaigns', f_topics: 'Topics',
    all: 'All', incoming: 'Incoming', outgoing: 'Outgoing', incoming_pl: 'Incoming', outgoing_pl: 'Outgoing',
    automated: 'Automated', operator_sc: 'Operator',
    number_hint: "Any part of the caller's or callee's number", number_short: 'Enter at least 3 characters',
    talk_from: 'from', talk_to: 'to', talk_hint: 'm:ss or h:mm:ss, 0 to 24 h', talk_bad: 'Enter a time from 0:00 to 24:00:00',
    talk_order: '“from” is greater than “to”',
    search: 'Search', selected: n => `${n} selected`, more: n => `and ${n} more — refine the search`, nothing: 'Nothing found',
    columns_hint: 'Choose the columns of the table. The choice is kept for your account.',
    columns_none: 'Choose at least one column',
    softphone: 'softphone', softphone_tip: 'Outgoing call from the softphone',
    callback_tip: 'Call back', notes_n: n => `${n} ${n === 1 ? 'note' : 'notes'}`, hide: 'Collapse',
    play: 'Play', no_recording: 'Recording unavailable', has_recording: 'Has a recording',
    rec_title: 'Call recording', rec_download: 'Download recording', rec_pending: n => `Fetching the recording from the telephony (attempts: ${n})`,
    rec_failed: e => `Could not get the recording: ${e}`, rec_none: 'No recording',
    rec_start: 'Recording starts', rec_end: 'Recording ends', rec_span: 'Recording',
    log: 'Call log', log_hide: 'Hide log', log_lines: 'Telephony log lines', log_no_lines: 'The telephony sent no log lines',
    log_copy: 'Copy link to the log', log_copied: at => `Link copied. Valid until ${at}`,
    log_made: at => `Link valid until ${at}`, log_revoke: 'Revoke links', log_revoked: n => `Links revoked: ${n}`,
    ev_time: 'Time', ev_event: 'Event', ev_source: 'Source', ev_detail: 'Details', ev_fields: 'fields',
    ev: {
      created: 'Call recorded', updated: 'Call changed', recording_requested: 'Recording requested',
      recording_stored: 'Recording stored', recording_retry: 'Recording fetch retried', recording_failed: 'Recording not received',
      recording_deleted: 'Recording deleted by retention', log_link_created: 'Log link created',
      log_link_revoked: 'Log links revoked',
    },
    account: 'Account', keep_calls: 'Keep calls, days', keep_recordings: 'Keep recordings, days',
    keep_hint: 'Empty keeps forever. Deletion runs in the background and is written to the audit log.',
    restricted_rec: 'Recordings for supervisors and operators',
    ra_download: 'Play and download', ra_play: 'Play only', ra_none: 'No access',
    saved: 'Saved', keep_bad: 'Enter 1 to 36500 days, or leave the field empty',
    qm: 'Tinkoff QM', qm_base_url: 'QM system address', qm_api_key: 'API key', qm_key_keep: 'Leave empty to keep the current key',
    qm_language: 'Language of the calls (a code such as ru)', qm_channel: "The operator's channel in recordings", qm_left: 'Left channel', qm_right: 'Right channel',
    qm_active: 'Integration active', qm_active_hint: 'While the integration is active, the owner, administrators and managers upload calls from the Export menu.',
    qm_connect: 'Check the connection', qm_connect_ok: 'The connection works',
    qm_connected: at => `Connected ${at}`, qm_not_connected: 'Not connected', qm_key_again: 'Enter the key again',
    qm_unreachable: 'Only this machine reaches that address: the QM system cannot download the recordings. Start calltrail with --public-url set to an address it reaches.',
    qm_links: url => `The QM system downloads recordings through signed links from ${url}… — it must be reachable from there (--public-url).`,
    ingest: 'Call intake', in_source: 'Source', in_accepted: 'New', in_updated: 'Updated', in_duplicates: 'Duplicates',
    in_pending: 'Waiting for their call', in_skipped: 'Skipped', in_rejected: 'Rejected', in_last: 'Last seen',
    in_none: 'No calls have come in yet.', in_rejections: 'Rejected data', in_no_rejections: 'Nothing was rejected.',
    in_show: 'Show', in_hide: 'Hide', in_replay: 'Send again', in_replayed: at => `Sent again ${at}`,
    in_not_replayable: 'A line of a file: correct the file and import it again', in_refresh: 'Refresh', in_import: 'Import',
    pbx: 'PBX settings', pbx_own: "The contact center's external numbers (one per line)", pbx_digits: 'An extension has at most this many digits',
    pbx_contexts: 'Contexts calls from outside come in (comma-separated)', pbx_internal: 'Calls between our own numbers',
    pbx_int_outgoing: "Keep as the caller's outgoing calls", pbx_int_skip: 'Do not keep', pbx_tz: "The PBX's time zone (empty: the account's)",
    pbx_rec: "Where the PBX's recordings are ({name}: the file name, {path}: its path)", pbx_hint: 'Applies to calls taken in after saving.',
    details: 'Call details', flow: 'View call flow', flow_hide: 'Hide call flow', flow_empty: 'No call flow recorded',
    d_external: 'External id', d_kind: 'Call kind', d_group: 'Group', d_dial: 'Dialling started', d_answered: 'Answered',
    d_scenario: 'Scenario started', d_amd: 'Answering machine detected', d_ended: 'Ended', d_notes: 'Notes',
    k_incoming: 'Incoming', k_softphone_outgoing: 'Softphone outgoing', k_auto_campaign: 'Automated campaign',
    k_operator_campaign: 'Operator campaign',
    tz: 'Time zone', lang: 'Language',
    role_owner: 'Owner', role_admin: 'Administrator', role_manager: 'Manager', role_supervisor: 'Supervisor', role_operator: 'Operator',
    col: {
      time: 'Time', type: 'Type', from: 'From', to: 'To', operator: 'Operator', queue: 'Queue',
      ring_duration: 'Ring duration', talk_duration: 'Talk duration', recording: 'Recording', price: 'Price',
      scenario: 'Scenario', campaign: 'Campaign', result: 'Attempt result', completion_code: 'Completion code',
      attempts: 'Attempts', tags: 'Tags', topics: 'Topics', notes: 'Notes',
    },
    result: {
      other_error: 'Dial error', unavailable: 'Number unavailable', request_cancelled: 'Request cancelled',
      voicemail: 'Answering machine', invalid_number: 'Invalid number', busy: 'Number busy', no_answer: 'No answer',
      answered: 'Answered', insufficient_funds: 'Insufficient funds', lost_by_operator: 'Lost by operator',
      rejected: 'Rejected', blocked_dnc: 'Blocked: DNC', abandoned: 'Abandoned', ended_in_ivr: 'Ended in IVR',
    },
  },
};

const COLUMNS = ['time', 'type', 'from', 'to', 'operator', 'queue', 'ring_duration', 'talk_duration', 'recording',
  'price', 'scenario', 'campaign', 'result', 'completion_code', 'attempts', 'tags', 'topics', 'notes'];
const PRESETS = ['today', 'yesterday', 'last_7_days', 'last_30_days', 'this_week', 'this_month', 'last_month'];
const DEFAULT_PRESET = 'last_7_days';
// The search parameters the address bar may carry; everything else is ignored.
const FILTER_KEYS = ['from', 'to', 'preset', 'direction', 'kind', 'number', 'talk_min', 'talk_max', 'group', 'operator',
  'queue', 'campaign', 'scenario', 'completion_code', 'tag', 'topic', 'scenario_kind', 'result'];
const PAGE = 50;

function plural(n, one, few, many) {
  const m10 = n % 10, m100 = n % 100;
  if (m10 === 1 && m100 !== 11) return one;
  if (m10 >= 2 && m10 <= 4 && (m100 < 12 || m100 > 14)) return few;
  return many;
}

// ---------------------------------------------------------------------------------------------
// State: who is signed in, what they chose, and what the table shows.

const S = {
  csrf: null, me: null, prefs: null, lang: 'ru', tz: 'UTC',
  dirs: null,                 // filter choices, loaded when the settings open
  list: null,                 // { gen, items: Map id → {call, tr}, cursor, total, done, loading, error }
  live: { source: null, paused: false, waiting: new Map(), resync: false, connected: false, retry: null },
};

function t(key, ...args) {
  const w = WORDS[S.lang][key];
  return typeof w === 'function' ? w(...args) : (w ?? key);
}

// ---------------------------------------------------------------------------------------------
// DOM: every text goes in as text, never as markup.

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const $ = (sel, root = document) => root.querySelector(sel);

// Line icons drawn here: no icon font, no emoji the machine may lack.
const ICONS = {
  calendar: 'M4 6h16v14H4zM4 10h16M9 3v5M15 3v5',
  gear: 'M12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6zM12 2v3M12 19v3M2 12h3M19 12h3M4.9 4.9l2.1 2.1M17 17l2.1 2.1M4.9 19.1 7 17M17 7l2.1-2.1',
  pause: 'M8 5v14M16 5v14',
  play: 'M7 5l12 7-12 7z',
  download: 'M12 4v11M7 10l5 5 5-5M5 20h14',
  phone: 'M6 3h3l2 5-2.5 1.5a11 11 0 0 0 6 6L16 13l5 2v3a2 2 0 0 1-2 2A17 17 0 0 1 4 5a2 2 0 0 1 2-2z',
};
function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', `icon icon-${name}`);
  svg.setAttribute('aria-hidden', 'true');
  const p = document.createElementNS(ns, 'path');
  p.setAttribute('d', ICONS[name]);
  svg.append(p);
  return svg;
}
const app = () => document.getElementById('app');

// ---------------------------------------------------------------------------------------------
// The API.

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status; this.code = e.code; this.field = e.field;
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && S.csrf) headers['X-CSRF-Token'] = S.csrf;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    if (res.status === 401 && S.me && path !== '/api/v1/session') signedOut();
    throw new ApiError(res.status, data);
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// Formatting, in the viewer's language and zone.

function duration(s) {
  if (s === null || s === undefined) return '';
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const p = n => String(n).padStart(2, '0');
  return hh > 0 ? `${hh}:${p(mm)}:${p(ss)}` : `${mm}:${p(ss)}`;
}

function parseDuration(text) {
  const v = text.trim();
  if (v === '') return null;
  if (!/^\d+(:\d{1,2}){0,2}$/.test(v)) return NaN;
  const parts = v.split(':').map(Number);
  if (parts.slice(1).some(n => n > 59)) return NaN;
  const s = parts.reduce((acc, n) => acc * 60 + n, 0);
  return s > 86400 ? NaN : s;
}

const formatters = new Map();
function fmt(kind) {
  const key = `${kind}|${S.lang}|${S.tz}`;
  if (!formatters.has(key)) {
    const locale = S.lang === 'ru' ? 'ru-RU' : 'en-GB';
    const opts = kind === 'time'
      ? { timeZone: S.tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }
      : { timeZone: S.tz, hour: '2-digit', minute: '2-digit', second: '2-digit' };
    formatters.set(key, new Intl.DateTimeFormat(locale, opts));
  }
  return formatters.get(key);
}
const when = iso => (iso ? fmt('time').format(new Date(iso)) : '');
const clock = iso => (iso ? fmt('clock').format(new Date(iso)) : '');

// A count, with the viewer's language's digit grouping.
function num(n) {
  return n.toLocaleString(S.lang === 'ru' ? 'ru-RU' : 'en-GB');
}

function money(amount, currency) {
  if (amount === null || amount === undefined) return '';
  try {
    return new Intl.NumberFormat(S.lang === 'ru' ? 'ru-RU' : 'en-GB', { style: 'currency', currency: currency || 'RUB', minimumFractionDigits: 2, maximumFractionDigits: 4 }).format(Number(amount));
  } catch { return `${amount} ${currency || ''}`.trim(); }
}

// The calendar's date in the viewer's zone, as YYYY-MM-DD.
function zoneDate(d) {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: S.tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
  return parts;
}
function addDays(ymd, n) {
  const d = new Date(`${ymd}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

// ---------------------------------------------------------------------------------------------
// The address bar is the view: filters in, API query out.

function viewParams() {
  const url = new URLSearchParams(location.search);
  const p = new URLSearchParams();
  for (const [k, v] of url) if (FILTER_KEYS.includes(k) && v !== '') p.append(k, v);
  if (!p.has('preset') && !p.has('from') && !p.has('to')) p.set('preset', DEFAULT_PRESET);
  return p;
}

function setView(params, replace) {
  const q = params.toString();
  const url = location.pathname + (q ? `?${q}` : '');
  if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
  loadCalls();
}

function apiQuery(extra) {
  const p = viewParams();
  p.set('tz', S.tz);
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return p.toString();
}

// ---------------------------------------------------------------------------------------------
// Start: signed in → the history; otherwise the sign-in form.

async function boot() {
  try {
    // One round trip: who is signed in, what they may do, what they chose.
    const [session, me, prefs] = await Promise.all(['/api/v1/session', '/api/v1/me', '/api/v1/me/preferences'].map(p => api('GET', p)));
    S.csrf = session.csrf_token;
    enter(me, prefs);
  } catch (e) {
    if (e.status === 401) showLogin(); else showFatal(e);
  }
}

async function signedIn() {
  const [me, prefs] = await Promise.all([api('GET', '/api/v1/me'), api('GET', '/api/v1/me/preferences')]);
  enter(me, prefs);
}

function enter(me, prefs) {
  S.me = me; S.prefs = prefs;
  S.lang = prefs.lang || browserLang();
  S.tz = prefs.timezone || me.settings.timezone || 'UTC';
  document.documentElement.lang = S.lang;
  showMain();
}

function browserLang() {
  const stored = localStorage.getItem('calltrail.lang');
  if (stored === 'ru' || stored === 'en') return stored;
  return (navigator.language || 'ru').toLowerCase().startsWith('en') ? 'en' : 'ru';
}

function signedOut() {
  stopLive();
  S.me = null; S.csrf = null; S.list = null; S.dirs = null;
  showLogin();
}

function showFatal(e) {
  app().replaceChildren(h('div', { class: 'login' }, h('h1', {}, t('error')), h('p', {}, e.message),
    h('button', { class: 'primary', onclick: () => location.reload() }, t('retry'))));
}

function showLogin(message) {
  S.lang = browserLang();
  document.documentElement.lang = S.lang;
  document.title = `${t('sign_in')} · calltrail`;
  const error = h('p', { class: 'field error', role: 'alert', hidden: !message }, message || '');
  const login = h('input', { id: 'login', name: 'login', autocomplete: 'username', required: true, autofocus: true });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { class: 'primary', type: 'submit' }, t('sign_in'));
  const form = h('form', {
    class: 'login', onsubmit: async ev => {
      ev.preventDefault();
      submit.disabled = true; error.hidden = true;
      try {
        const s = await api('POST', '/api/v1/session', { login: login.value.trim(), password: password.value });
        S.csrf = s.csrf_token;
        await signedIn();
      } catch (e) {
        error.textContent = e.status === 401 ? t('bad_login') : e.status === 429 ? t('throttled') : e.message;
        error.hidden = false; submit.disabled = false; password.select();
      }
    },
  },
  h('h1', {}, 'calltrail'), h('p', { class: 'sub' }, t('sign_in_sub')),
  h('label', { for: 'login' }, t('login')), login,
  h('label', { for: 'password' }, t('password')), password,
  error, submit,
  h('div', { class: 'langs' }, langSwitch(lang => { localStorage.setItem('calltrail.lang', lang); showLogin(); })));
  app().replaceChildren(form);
}

function langSwitch(onpick) {
  return h('div', { class: 'seg', role: 'group', 'aria-label': t('lang') },
    ['ru', 'en'].map(l => h('button', { type: 'button', 'aria-pressed': String(S.lang === l), dataset: { lang: l }, onclick: () => onpick(l) }, l.toUpperCase())));
}

// ---------------------------------------------------------------------------------------------
// The main view.

function visibleColumns() {
  return S.prefs.columns.filter(c => COLUMNS.includes(c));
}

function showMain() {
  document.title = `${t('title')} · calltrail`;
  const me = S.me;
  const header = h('header', { class: 'top' },
    h('div', { class: 'brand' }, h('img', { src: '/assets/icon.svg', alt: '' }), 'calltrail'),
    h('nav', {}, `${t('title')} › ${t('calls')}`),
    h('div', { class: 'spacer' }),
    h('span', { class: 'who' }, h('b', { id: 'who' }, me.user.name), ` · ${t(`role_${me.user.role}`)}`),
    tzSelect(),
    langSwitch(async lang => { await savePrefs({ lang }); S.lang = lang; localStorage.setItem('calltrail.lang', lang); document.documentElement.lang = lang; showMain(); }),
    h('button', { class: 'btn', id: 'sign-out', onclick: signOut }, t('sign_out')));
  if (!me.permissions.call_history) {
    stopLive();
    app().replaceChildren(header, h('div', { class: 'table-wrap' }, h('table', { class: 'calls' },
      h('tbody', {}, h('tr', { class: 'state-row' }, h('td', {}, t('no_access')))))));
    return;
  }
  const count = h('span', { class: 'count', id: 'count' });
  const toolbar = h('div', { class: 'toolbar' },
    calendar(),
    h('button', { class: 'btn', id: 'open-settings', onclick: () => openSettings('filters') }, icon('gear'), t('settings')),
    count,
    h('div', { class: 'spacer' }),
    h('span', { class: 'live-state', id: 'live-state' }),
    h('button', { class: 'btn', id: 'pause', 'aria-pressed': String(S.live.paused), onclick: togglePause }),
    exportMenu());
  const table = h('table', { class: 'calls', id: 'calls' }, h('thead', {}, h('tr', {}, visibleColumns().map(c => h('th', { dataset: { col: c } }, t('col')[c])))), h('tbody', {}));
  const sentinel = h('div', { id: 'sentinel' });
  app().replaceChildren(header, toolbar, h('div', { class: 'chips', id: 'chips' }), h('div', { class: 'table-wrap' }, table), sentinel);
  new IntersectionObserver(entries => { if (entries.some(e => e.isIntersecting)) loadMore(); }, { rootMargin: '600px' }).observe(sentinel);
  renderPause();
  loadCalls();
}

function tzSelect() {
  const zones = new Set([S.tz, S.me.settings.timezone, Intl.DateTimeFormat().resolvedOptions().timeZone, 'UTC']);
  for (const z of (Intl.supportedValuesOf ? Intl.supportedValuesOf('timeZone') : [])) zones.add(z);
  const sel = h('select', { class: 'tz', id: 'tz', 'aria-label': t('tz'), title: t('tz'), onchange: async () => {
    await savePrefs({ timezone: sel.value });
    S.tz = sel.value;
    showMain();
  } }, [...zones].filter(Boolean).map(z => h('option', { value: z, selected: z === S.tz }, z)));
  return sel;
}

async function savePrefs(change) {
  S.prefs = await api('PUT', '/api/v1/me/preferences', change);
}

async function signOut() {
  try { await api('DELETE', '/api/v1/session'); } catch { /* the session may be gone already */ }
  signedOut();
}

// ---------------------------------------------------------------------------------------------
// Calendar: presets and a custom range, in the viewer's zone.

function rangeLabel(p) {
  if (p.get('preset')) return t(p.get('preset'));
  const from = p.get('from'), to = p.get('to');
  if (!from && !to) return t('all_time');
  const show = d => (d ? new Date(`${d.slice(0, 10)}T12:00:00Z`).toLocaleDateString(S.lang === 'ru' ? 'ru-RU' : 'en-GB', { timeZone: 'UTC' }) : '…');
  // `to` is exclusive on the API; people read the last day included.
  return `${show(from)} – ${show(to && to.length === 10 ? addDays(to, -1) : to)}`;
}

function calendar() {
  const p = viewParams();
  const pop = h('div', { class: 'pop', id: 'calendar-pop', hidden: true });
  const button = h('button', { class: 'btn', id: 'calendar', 'aria-haspopup': 'true', onclick: ev => { ev.stopPropagation(); togglePop(pop); } }, icon('calendar'), h('span', {}, rangeLabel(p)));
  const pick = params => {
    const next = viewParams();
    for (const k of ['preset', 'from', 'to']) next.delete(k);
    for (const [k, v] of Object.entries(params)) next.set(k, v);
    pop.hidden = true;
    button.lastChild.textContent = rangeLabel(next);
    setView(next);
  };
  const today = zoneDate(new Date());
  const from = h('input', { type: 'date', id: 'date-from', value: (p.get('from') || addDays(today, -6)).slice(0, 10), max: today });
  const to = h('input', { type: 'date', id: 'date-to', value: p.get('to') && p.get('to').length === 10 ? addDays(p.get('to'), -1) : today, max: today });
  pop.append(h('div', { class: 'calendar' },
    h('div', { class: 'presets' }, PRESETS.map(k => h('button', { class: 'item', dataset: { preset: k }, 'aria-pressed': String(p.get('preset') === k), onclick: () => pick({ preset: k }) }, t(k)))),
    h('div', { class: 'custom' }, h('b', {}, t('custom')),
      h('label', {}, t('date_from'), ' ', from), h('label', {}, t('date_to'), ' ', to),
      h('button', { class: 'primary', id: 'date-apply', onclick: () => {
        if (!from.value || !to.value) return;
        const [a, b] = from.value <= to.value ? [from.value, to.value] : [to.value, from.value];
        pick({ from: a, to: addDays(b, 1) });
      } }, t('apply')))));
  pop.addEventListener('click', ev => ev.stopPropagation());
  return h('div', { class: 'pop-wrap' }, button, pop);
}

function togglePop(pop) {
  const open = pop.hidden;
  document.querySelectorAll('.pop').forEach(p => { p.hidden = true; });
  pop.hidden = !open;
}
document.addEventListener('click', () => document.querySelectorAll('.pop').forEach(p => { p.hidden = true; }));
document.addEventListener('keydown', ev => {
  if (ev.key !== 'Escape') return;
  document.querySelectorAll('.pop').forEach(p => { p.hidden = true; });
  closeSettings();
});

// ---------------------------------------------------------------------------------------------
// Export: the current filtered view, in the viewer's language, zone and columns.

// Views this large (and every XLSX, which is built whole before it can be sent) become a
// background job with progress; smaller CSVs stream straight to the browser.
const STREAM_CSV_UP_TO = 100_000;

function exportMenu() {
  const columns = () => visibleColumns().join(',');
  const item = (format, label) => h('a', { class: 'item', id: `export-${format}`, href: '#', onclick: ev => {
    ev.preventDefault();
    pop.hidden = true;
    const total = S.list?.total ?? Infinity;
    if (format === 'csv' && total <= STREAM_CSV_UP_TO) {
      // A plain navigation: the browser streams the file to disk, nothing is held in the page.
      download(`/api/v1/calls/export?${apiQuery({ format, lang: S.lang, columns: columns() })}`);
    } else {
      startExportJob(format);
    }
  } }, label);
  // The QM item only once the integration is connected and active, and only for the roles that
  // may use it: the server says both in `qm_export`.
  const qm = S.me.permissions.qm_export && h('a', { class: 'item', id: 'export-qm', href: '#', onclick: ev => {
    ev.preventDefault();
    pop.hidden = true;
    openQmExport();
  } }, t('export_qm'));
  // The past uploads (and the one going on), to follow one again or send its errors again.
  const qmJobs = S.me.permissions.qm_export && h('a', { class: 'item', id: 'export-qm-jobs', href: '#', onclick: ev => {
    ev.preventDefault();
    pop.hidden = true;
    openQmJobs();
  } }, t('qm_jobs'));
  const pop = h('div', { class: 'pop right', id: 'export-pop', hidden: true }, item('xlsx', t('export_xlsx')), item('csv', t('export_csv')), qm, qmJobs);
  pop.addEventListener('click', ev => ev.stopPropagation());
  return h('div', { class: 'pop-wrap' }, h('button', { class: 'btn', id: 'export', 'aria-haspopup': 'true', onclick: ev => { ev.stopPropagation(); togglePop(pop); } }, icon('download'), t('export'), ' ▾'), pop);
}

// After the permissions changed (the QM integration turned on or off): the menu, not the page.
function refreshExportMenu() {
  const menu = $('#export')?.closest('.pop-wrap');
  if (menu) menu.replaceWith(exportMenu());
}

function download(href) {
  const a = h('a', { href, download: '' });
  document.body.append(a); a.click(); a.remove();
}

// The view's filters as the job API wants them: an object of strings and lists.
function filtersObject() {
  const out = {};
  for (const [k, v] of viewParams()) (out[k] = out[k] || []).push(v);
  return out;
}

// A panel in the corner that follows a background job; one of each kind at a time.
function jobPanel(id) {
  document.querySelectorAll(`#${id}`).forEach(e => e.remove());
  const panel = h('div', { class: 'job', id, role: 'status' });
  document.body.append(panel);
  return panel;
}

async function startExportJob(format) {
  const panel = jobPanel('export-job');
  const bar = h('progress', { max: 1, value: 0 });
  const text = h('div', { class: 'muted' }, t('job_queued'));
  let job;
  const cancel = h('button', { class: 'btn', id: 'export-cancel', onclick: async () => {
    if (job) await api('DELETE', `/api/v1/exports/${job.id}`).catch(() => null);
    panel.remove();
  } }, t('cancel'));
  panel.append(h('b', {}, `${t('export_title')} ${format.toUpperCase()}`), bar, text, cancel);
  try {
    job = await api('POST', '/api/v1/exports', { format, lang: S.lang, tz: S.tz, columns: visibleColumns(), filters: filtersObject() });
  } catch (e) {
    text.textContent = `${t('error')}: ${e.message}`;
    return;
  }
  const locale = S.lang === 'ru' ? 'ru-RU' : 'en-GB';
  while (document.body.contains(panel)) {
    try { job = await api('GET', `/api/v1/exports/${job.id}`); } catch (e) { text.textContent = `${t('error')}: ${e.message}`; return; }
    if (job.rows_total !== null) { bar.max = Math.max(job.rows_total, 1); bar.value = job.rows_done; }
    if (job.state === 'done') {
      bar.value = bar.max;
      text.replaceChildren(t('job_done', job.rows_done.toLocaleString(locale)), ' ',
        h('a', { href: job.file_url, id: 'export-file', download: '' }, t('download')));
      cancel.textContent = t('close');
      download(job.file_url);
      return;
    }
    if (job.state === 'failed' || job.state === 'cancelled') {
      text.textContent = job.error || t(`job_${job.state}`);
      cancel.textContent = t('close');
      return;
    }
    text.textContent = job.state === 'queued' ? t('job_queued')
      : t('job_progress', job.rows_done.toLocaleString(locale), (job.rows_total ?? 0).toLocaleString(locale));
    await new Promise(r => setTimeout(r, 400));
  }
}

// ---------------------------------------------------------------------------------------------
// Handing the current view's calls to the QM system (T-Bank QM). The server sends them in the
// background; the panel follows the job, lists each call with its outcome (all of them or one
// outcome, a page at a time), and can send again the calls the QM system did not take.

const QM_COUNTS = [['sent', 'qm-sent', 'qm_sent'], ['already_sent', 'qm-already', 'qm_already'],
  ['skipped', 'qm-skipped', 'qm_skipped'], ['failed', 'qm-failed', 'qm_failed'], ['pending', 'qm-pending', 'qm_pending']];
const QM_FINISHED = ['done', 'failed', 'cancelled'];
// The outcomes the list can be narrowed to ('' is every call), in the order offered.
const QM_FILTERS = ['', 'sent', 'already_sent', 'skipped', 'failed', 'pending'];
// Calls per page of the list; the API pages through all of them.
const QM_PAGE = 100;

// The job with one page of its calls: those of `outcome` ('' for all) after the call `after`.
function qmJobUrl(id, outcome, after) {
  const q = new URLSearchParams();
  if (outcome) q.set('outcome', outcome);
  if (after) q.set('after', after);
  q.set('limit', String(QM_PAGE));
  return `/api/v1/integrations/qm/exports/${id}?${q}`;
}

// First the question: how many calls, and which of them will not be sent.
function openQmExport() {
  const panel = jobPanel('qm-job');
  panel.classList.add('qm');
  const total = S.list?.total;
  const start = h('button', { class: 'primary', id: 'qm-start', onclick: async () => {
    start.disabled = true;
    try {
      // With the page's zone: a preset's days are the viewer's days, as in the count above.
      followQmJob(panel, await api('POST', '/api/v1/integrations/qm/exports', { filters: { ...filtersObject(), tz: S.tz } }));
    } catch (e) {
      panel.replaceChildren(h('b', {}, t('qm_title')), h('div', { class: 'bad' }, `${t('error')}: ${e.message}`),
        h('div', { class: 'job-actions' }, qmClose(panel)));
    }
  } }, t('qm_start'));
  panel.replaceChildren(h('b', {}, t('qm_title')),
    h('p', {}, t('qm_confirm', total == null ? '…' : num(total))),
    h('p', { class: 'muted' }, t('qm_confirm_note')),
    h('div', { class: 'job-actions' }, qmClose(panel, t('cancel')), start));
}

// The recent uploads, newest first; a row opens that job in the panel as if just started.
async function openQmJobs() {
  const panel = jobPanel('qm-job');
  panel.classList.add('qm');
  const status = h('div', { class: 'muted' }, t('loading'));
  panel.replaceChildren(h('b', {}, t('qm_jobs')), status, h('div', { class: 'job-actions' }, qmClose(panel)));
  let items;
  try {
    ({ items } = await api('GET', '/api/v1/integrations/qm/exports'));
  } catch (e) {
    status.className = 'bad'; status.textContent = `${t('error')}: ${e.message}`;
    return;
  }
  if (!document.body.contains(panel)) return;
  if (!items.length) { status.textContent = t('qm_jobs_none'); return; }
  const cols = t('qm_jobs_cols');
  const open = job => followQmJob(panel, job);
  const rows = items.map(j => h('tr', { dataset: { job: j.id, state: j.state }, tabindex: '0', title: t('qm_jobs_open'),
    onclick: () => open(j), onkeydown: ev => { if (ev.key === 'Enter') open(j); } },
  h('td', {}, when(j.created_at)),
  h('td', {}, t('qm_state')[j.state] ?? j.state),
  h('td', { class: 'n' }, num(j.sent)),
  h('td', { class: 'n' }, num(j.failed)),
  h('td', { class: 'n' }, num(j.total))));
  status.replaceWith(h('div', { class: 'qm-calls-wrap' }, h('table', { class: 'qm-calls qm-jobs', id: 'qm-jobs' },
    h('thead', {}, h('tr', {}, ['created', 'state', 'sent', 'failed', 'total'].map(k => h('th', {}, cols[k])))),
    h('tbody', {}, rows))));
}

function qmClose(panel, label = t('close'), title = null) {
  return h('button', { class: 'btn', id: 'qm-close', title, onclick: () => panel.remove() }, label);
}

// Polls the job every second while the panel is open, until it has finished; each poll brings
// the first page of the calls the list shows.
async function followQmJob(panel, job) {
  panel.dataset.job = job.id;
  const show = qmJobView(panel);
  show(job);
  while (!QM_FINISHED.includes(job.state)) {
    await new Promise(r => setTimeout(r, 1000));
    if (!document.body.contains(panel)) return;
    const outcome = show.outcome();
    try {
      job = await api('GET', qmJobUrl(job.id, outcome));
    } catch (e) {
      show.error(e.message);
      return;
    }
    show(job, outcome);
  }
}

// The panel's parts, built once per job so that its buttons stay put while the counts change;
// returns the function that shows a state of the job (with the first page of the calls of
// `outcome`, when it was asked for).
function qmJobView(panel) {
  const state = h('div', { id: 'qm-state' });
  const bar = h('progress', { max: 1, value: 0 });
  const numbers = Object.fromEntries(QM_COUNTS.map(([key, id]) => [key, h('b', { id })]));
  const error = h('div', { class: 'bad', hidden: true });
  const actions = h('div', { class: 'job-actions' });
  const calls = qmCallList();
  panel.replaceChildren(h('b', {}, t('qm_title')), state, bar,
    h('dl', { class: 'qm-counts' }, QM_COUNTS.map(([key, , label]) => h('div', {}, h('dt', {}, t(label)), h('dd', {}, numbers[key])))),
    error, calls.el, actions);
  let finished = null;
  const show = (job, outcome) => {
    const done = job.total - job.pending;
    state.dataset.state = job.state;
    state.textContent = job.state === 'queued' ? t('qm_state').queued : `${t('qm_state')[job.state]} · ${t('qm_progress', num(done), num(job.total))}`;
    bar.max = Math.max(job.total, 1); bar.value = done;
    for (const [key] of QM_COUNTS) numbers[key].textContent = num(job[key]);
    show.error(job.error);
    calls.show(job, outcome, QM_FINISHED.includes(job.state));
    // The buttons change once: from stopping the job to what comes after it.
    if (finished !== QM_FINISHED.includes(job.state)) {
      finished = QM_FINISHED.includes(job.state);
      actions.replaceChildren(...(finished ? qmAfter(panel, job, show) : qmWhile(panel, job, show)));
    }
  };
  show.error = message => { error.hidden = !message; error.textContent = message || ''; };
  show.outcome = () => calls.outcome();
  return show;
}

// Each call of the job and what became of it: why the QM system did not take it, and the id
// its support asks for. One outcome or all, a page at a time.
function qmCallList() {
  let id = null;
  // The outcome shown ('' for all); until the person picks one, the errors once the job has
  // finished with some, every call otherwise.
  let outcome = '', picked = false;
  let next = null;
  // Answers to earlier questions (another outcome, a page before a refresh) are dropped.
  let asked = 0;
  const select = h('select', { id: 'qm-outcome', 'aria-label': t('qm_filter'), onchange: () => {
    outcome = select.value; picked = true;
    load();
  } }, QM_FILTERS.map(v => h('option', { value: v }, t('qm_filters')[v])));
  const cols = t('qm_cols');
  const body = h('tbody');
  const table = h('table', { class: 'qm-calls', id: 'qm-calls', hidden: true },
    h('thead', {}, h('tr', {}, ['call', 'outcome', 'attempts', 'status', 'error', 'correlation'].map(k => h('th', {}, cols[k])))), body);
  const none = h('div', { class: 'muted', id: 'qm-none', hidden: true }, t('qm_none'));
  const more = h('button', { class: 'btn', id: 'qm-more', hidden: true, onclick: () => load(next) }, t('qm_more'));
  const el = h('div', { class: 'qm-calls-box' },
    h('label', { class: 'qm-filter' }, h('span', {}, t('qm_filter')), select),
    h('div', { class: 'qm-calls-wrap' }, table, none), more);

  const rows = list => list.map(c => h('tr', { dataset: { call: c.call_id, outcome: c.outcome } },
    h('td', { title: c.qm_id ? `QM id: ${c.qm_id}` : null }, c.external_id ?? c.call_id),
    h('td', {}, t('qm_outcome')[c.outcome] ?? c.outcome),
    h('td', { class: 'n' }, num(c.attempts ?? 0)),
    h('td', {}, c.status ?? '—'),
    h('td', {}, c.error || ''),
    h('td', {}, c.correlation_id || '')));
  // A page of calls: the first replaces the list, the next ones go under it.
  const put = (job, append) => {
    const list = job.calls || [];
    if (append) body.append(...rows(list)); else body.replaceChildren(...rows(list));
    table.hidden = !body.rows.length;
    none.hidden = !table.hidden;
    none.textContent = t('qm_none');
    next = job.next_after || null;
    more.hidden = !next;
    more.disabled = false;
  };
  async function load(after = null) {
    const mine = ++asked;
    more.disabled = true;
    try {
      const job = await api('GET', qmJobUrl(id, outcome, after));
      if (mine === asked) put(job, !!after);
    } catch (e) {
      if (mine === asked) { more.disabled = false; none.hidden = false; none.textContent = `${t('error')}: ${e.message}`; }
    }
  }
  return {
    el,
    outcome: () => outcome,
    // A state of the job; `fetched` is the outcome its calls are of, when it brought some.
    show(job, fetched, finished) {
      id = job.id;
      if (!picked) {
        const want = finished && job.failed > 0 ? 'failed' : '';
        if (want !== outcome) { outcome = want; select.value = want; }
      }
      if (job.calls && fetched === outcome) { asked++; put(job, false); } else load();
    },
  };
}

function qmWhile(panel, job, show) {
  const stop = h('button', { class: 'btn', id: 'qm-cancel', onclick: async () => {
    stop.disabled = true;
    // The next poll shows the job cancelled.
    try { await api('DELETE', `/api/v1/integrations/qm/exports/${job.id}`); } catch (e) { show.error(e.message); stop.disabled = false; }
  } }, t('qm_stop'));
  return [stop, qmClose(panel, t('close'), t('qm_hide_hint'))];
}

// A re-run sends the calls that failed and, of a job that stopped early (cancelled, failed),
// the calls it never got to.
function qmAfter(panel, job, show) {
  const unsent = ['cancelled', 'failed'].includes(job.state) && job.pending > 0;
  const rerun = (job.failed > 0 || unsent) && h('button', { class: 'primary', id: 'qm-rerun', onclick: async () => {
    rerun.disabled = true;
    try {
      followQmJob(panel, await api('POST', `/api/v1/integrations/qm/exports/${job.id}/rerun`));
    } catch (e) {
      show.error(e.message);
      rerun.disabled = false;
    }
  } }, t(unsent ? 'qm_rerun_rest' : 'qm_rerun'));
  return [rerun, qmClose(panel)].filter(Boolean);
}

// ---------------------------------------------------------------------------------------------
// The list: pages that follow the cursor, rows that live events update in place.

async function loadCalls() {
  const gen = (S.list?.gen || 0) + 1;
  S.list = { gen, items: new Map(), cursor: null, total: null, done: false, loading: false, error: null };
  S.live.waiting.clear(); S.live.resync = false;
  const tbody = $('#calls tbody');
  if (!tbody) return;
  tbody.replaceChildren();
  renderChips();
  renderCount();
  renderPause();
  startLive();
  await loadMore();
}

async function loadMore() {
  const L = S.list;
  if (!L || L.loading || L.done || L.error) return;
  L.loading = true;
  renderState();
  try {
    const extra = { limit: PAGE };
    if (L.cursor) extra.cursor = L.cursor;
    const page = await api('GET', `/api/v1/calls?${apiQuery(extra)}`);
    if (S.list !== L) return;
    if (L.total === null || !L.cursor) L.total = page.total;
    appendRows(page.items);
    L.cursor = page.next_cursor; L.done = !page.next_cursor;
  } catch (e) {
    if (S.list !== L) return;
    L.error = e;
  } finally {
    if (S.list === L) {
      L.loading = false;
      renderState(); renderCount();
    }
  }
  // A short first page on a tall screen: keep filling while the sentinel is in sight.
  const s = $('#sentinel');
  if (S.list === L && !L.done && !L.error && s && s.getBoundingClientRect().top < innerHeight + 600) loadMore();
}

function renderCount() {
  const c = $('#count');
  if (!c || !S.list) return;
  c.replaceChildren(t('found'), ' ', h('b', { id: 'total' }, S.list.total === null ? '…' : S.list.total.toLocaleString(S.lang === 'ru' ? 'ru-RU' : 'en-GB')));
}

function renderState() {
  const tbody = $('#calls tbody');
  if (!tbody) return;
  tbody.querySelectorAll('tr.state-row').forEach(r => r.remove());
  const L = S.list, span = visibleColumns().length;
  let row = null;
  if (L.error) {
    row = h('tr', { class: 'state-row error' }, h('td', { colspan: span }, `${t('error')}: ${L.error.message} `,
      h('button', { class: 'btn', onclick: () => { L.error = null; loadMore(); } }, t('retry'))));
  } else if (L.loading) {
    row = h('tr', { class: 'state-row loading' }, h('td', { colspan: span }, t('loading')));
  } else if (L.items.size === 0) {
    row = h('tr', { class: 'state-row empty' }, h('td', { colspan: span }, t('empty')));
  } else if (L.done) {
    row = h('tr', { class: 'state-row end' }, h('td', { colspan: span }, t('the_end')));
  }
  if (row) tbody.append(row);
}

function appendRows(calls) {
  const tbody = $('#calls tbody');
  const before = tbody.querySelector('tr.state-row');
  for (const call of calls) {
    if (S.list.items.has(call.id)) continue;
    const tr = callRow(call);
    S.list.items.set(call.id, { call, tr });
    tbody.insertBefore(tr, before);
  }
}

// Newest first: by start, then by id, like the API.
function newer(a, b) {
  if (a.started_at !== b.started_at) return a.started_at > b.started_at;
  return BigInt(a.id) > BigInt(b.id);
}

// A call from the live stream: updated in place if shown, else put where the order says.
function upsertLive(call) {
  const L = S.list;
  const known = L.items.get(call.id);
  if (known) {
    known.call = call;
    const tr = callRow(call);
    tr.classList.toggle('open', known.tr.classList.contains('open'));
    known.tr.replaceWith(tr);
    known.tr = tr;
    return;
  }
  const tbody = $('#calls tbody');
  let anchor = null;
  for (const { call: other, tr } of L.items.values()) {
    if (newer(call, other) && (!anchor || newer(other, anchor.call))) anchor = { call: other, tr };
  }
  // Older than everything loaded while pages remain: its page will bring it.
  if (!anchor && !L.done) return;
  const tr = callRow(call);
  tr.classList.add('fresh');
  L.items.set(call.id, { call, tr });
  tbody.insertBefore(tr, anchor ? anchor.tr : tbody.querySelector('tr.state-row'));
  renderState();
  refreshTotal();
}

let totalTimer = null;
function refreshTotal() {
  clearTimeout(totalTimer);
  const L = S.list;
  totalTimer = setTimeout(async () => {
    try {
      const page = await api('GET', `/api/v1/calls?${apiQuery({ limit: 1 })}`);
      if (S.list === L) { L.total = page.total; renderCount(); }
    } catch { /* the next arrival tries again */ }
  }, 300);
}

// ---------------------------------------------------------------------------------------------
// One row.

function callRow(call) {
  const expandable = S.me.permissions.call_details;
  const tr = h('tr', { class: `call${expandable ? ' expandable' : ''}`, dataset: { id: call.id } },
    visibleColumns().map(c => h('td', { dataset: { col: c }, class: ['ring_duration', 'talk_duration', 'price', 'attempts', 'time'].includes(c) ? 'num' : null }, cell(c, call))));
  if (expandable) {
    tr.tabIndex = 0;
    tr.addEventListener('click', ev => { if (!ev.target.closest('button, a, audio, .notes-full')) toggleDetail(call.id); });
    tr.addEventListener('keydown', ev => { if (ev.key === 'Enter' && ev.target === tr) toggleDetail(call.id); });
  }
  return tr;
}

function ref(r) { return r ? r.name : ''; }

function cell(column, c) {
  switch (column) {
    case 'time': return when(c.started_at);
    case 'type': return h('span', { title: t(`k_${c.kind}`) }, t(c.direction));
    case 'from': return c.from || '';
    case 'to': return c.to || '';
    case 'operator': return [ref(c.operator), c.kind === 'softphone_outgoing' ? h('span', { class: 'softphone', title: t('softphone_tip') }, t('softphone')) : null];
    case 'queue': return ref(c.queue);
    case 'ring_duration': return duration(c.ring_seconds);
    case 'talk_duration': return duration(c.talk_seconds);
    case 'recording': return c.has_recording ? recordingCell(c) : '';
    case 'price': return c.price === undefined ? '' : money(c.price, c.currency);
    case 'scenario': {
      if (!c.scenario) return '';
      return c.scenario.url ? h('a', { href: c.scenario.url, target: '_blank', rel: 'noopener noreferrer' }, c.scenario.name) : c.scenario.name;
    }
    case 'campaign': return ref(c.campaign);
    case 'result': return c.result ? h('span', { class: `result ${c.success ? 'ok' : 'bad'}` }, t('result')[c.result] || c.result) : '';
    case 'completion_code': {
      const code = c.completion_code;
      if (!code) return '';
      return code.callback_at ? h('span', { class: 'has-tip', title: `${t('callback_tip')}: ${when(code.callback_at)}` }, code.name) : code.name;
    }
    case 'attempts': return c.kind === 'operator_campaign' && c.attempts !== null ? String(c.attempts) : '';
    case 'tags': return c.tags.map(x => h('span', { class: 'tag' }, x.name));
    case 'topics': return c.topics.map(x => h('span', { class: 'tag' }, x.name));
    case 'notes': return notesCell(c.notes);
    default: return '';
  }
}

function recordingCell(c) {
  if (!S.me.permissions.recording_play) return h('span', { class: 'muted', title: t('has_recording') }, '●');
  return h('button', { class: 'btn play', title: t('play'), 'aria-label': t('play'), onclick: ev => {
    ev.stopPropagation();
    const audio = h('audio', { controls: true, autoplay: true, preload: 'none', src: `/api/v1/calls/${c.id}/recording` });
    audio.addEventListener('error', () => audio.replaceWith(h('span', { class: 'muted' }, t('no_recording'))));
    ev.currentTarget.replaceWith(audio);
  } }, icon('play'));
}

function notesCell(notes) {
  if (!notes.length) return '';
  const wrap = h('div', { class: 'notes-cell' });
  const full = h('div', { class: 'notes-full', hidden: true }, notes.map(n =>
    h('div', { class: 'note' }, h('div', { class: 'meta' }, `${n.author || '—'} · ${when(n.at)}`), h('div', {}, n.text))));
  const first = notes[0].text.length > 40 ? `${notes[0].text.slice(0, 40)}…` : notes[0].text;
  const toggle = h('button', { class: 'toggle', 'aria-expanded': 'false', onclick: ev => {
    ev.stopPropagation();
    full.hidden = !full.hidden;
    toggle.setAttribute('aria-expanded', String(!full.hidden));
    toggle.textContent = full.hidden ? label : t('hide');
  } });
  const label = notes.length > 1 ? `${first} (${t('notes_n', notes.length)})` : first;
  toggle.textContent = label;
  wrap.append(toggle, full);
  return wrap;
}

// ---------------------------------------------------------------------------------------------
// A call, expanded (full roles only; the server refuses the others anyway).

async function toggleDetail(id) {
  const entry = S.list.items.get(id);
  if (!entry) return;
  const next = entry.tr.nextElementSibling;
  if (next && next.classList.contains('detail')) {
    next.remove(); entry.tr.classList.remove('open');
    return;
  }
  entry.tr.classList.add('open');
  const td = h('td', { colspan: visibleColumns().length }, t('loading'));
  const row = h('tr', { class: 'detail', dataset: { for: id } }, td);
  entry.tr.after(row);
  try {
    const d = await api('GET', `/api/v1/calls/${encodeURIComponent(id)}?tz=${encodeURIComponent(S.tz)}`);
    td.replaceChildren(detailView(d));
  } catch (e) {
    td.replaceChildren(h('span', { class: 'muted' }, `${t('error')}: ${e.message}`));
  }
}

function detailView(d) {
  const x = d.details;
  const item = (label, value) => (value ? h('div', {}, h('dt', {}, label), h('dd', {}, value)) : null);
  const flowList = h('div', { class: 'flow-wrap', hidden: true }, flowTimeline(d));
  const flowBtn = h('button', { class: 'btn', dataset: { action: 'flow' }, onclick: () => {
    flowList.hidden = !flowList.hidden;
    flowBtn.textContent = flowList.hidden ? t('flow') : t('flow_hide');
  } }, t('flow'));
  const logPanel = h('div', { class: 'log-wrap', hidden: true }, logView(x.log));
  const logBtn = h('button', { class: 'btn', dataset: { action: 'log' }, onclick: () => {
    logPanel.hidden = !logPanel.hidden;
    logBtn.textContent = logPanel.hidden ? t('log') : t('log_hide');
  } }, t('log'));
  const linkArea = h('div', { class: 'log-link' });
  const copyBtn = h('button', { class: 'btn', dataset: { action: 'log-link' }, onclick: () => makeLogLink(d.id, linkArea) }, t('log_copy'));
  return h('div', { class: 'detail' },
    h('dl', { class: 'detail-grid' },
      item(t('d_external'), d.external_id), item(t('d_kind'), t(`k_${d.kind}`)), item(t('d_group'), ref(d.group)),
      item(t('d_dial'), when(x.dial_started_at)), item(t('d_scenario'), when(x.scenario_started_at)),
      item(t('d_answered'), when(x.answered_at)), item(t('d_amd'), when(x.amd_detected_at)), item(t('d_ended'), when(x.ended_at))),
    recordingView(d),
    d.notes.length ? [h('h4', {}, t('d_notes')), h('div', { class: 'notes-full' }, d.notes.map(n =>
      h('div', { class: 'note' }, h('div', { class: 'meta' }, `${n.author || '—'} · ${when(n.at)}`), h('div', {}, n.text))))] : null,
    h('div', { class: 'actions' }, flowBtn, logBtn, copyBtn),
    linkArea, flowList, logPanel);
}

/// The recording: a player and a download link as the role allows, or where it stands.
function recordingView(d) {
  const r = d.details.recording;
  const perms = S.me.permissions;
  let body;
  if (r && r.url && perms.recording_play) {
    body = [h('audio', { controls: true, preload: 'metadata', src: r.url, class: 'rec-player' }),
      perms.recording_download ? h('a', { class: 'btn', href: `${r.url}?download=1`, download: '', dataset: { action: 'download-recording' } }, t('rec_download')) : null];
  } else if (r && r.url) {
    body = h('span', { class: 'muted' }, t('no_recording'));
  } else if (r && r.state === 'pending') {
    body = h('span', { class: 'muted' }, t('rec_pending', r.attempts));
  } else if (r && r.state === 'failed') {
    body = h('span', { class: 'bad' }, t('rec_failed', r.error || ''));
  } else {
    return null;
  }
  return h('div', { class: 'recording' }, h('h4', {}, t('rec_title')), h('div', { class: 'rec-row' }, body));
}

/// The call flow as a vertical timeline: each block with its type and outcome, the time between
/// blocks, and the span of the recording (answer to end) marked along it.
function flowTimeline(d) {
  const x = d.details;
  if (x.flow.length === 0) return h('p', { class: 'muted' }, t('flow_empty'));
  const entries = x.flow.map(step => ({ at: step.at, step }));
  const recorded = d.has_recording && x.answered_at;
  if (recorded) {
    entries.push({ at: x.answered_at, mark: 'start' });
    if (x.ended_at) entries.push({ at: x.ended_at, mark: 'end' });
  }
  // Stable by time; at the same instant the recording starts before and ends after the blocks.
  const weight = e => (e.mark === 'start' ? -1 : e.mark === 'end' ? 1 : 0);
  entries.sort((a, b) => (new Date(a.at) - new Date(b.at)) || (weight(a) - weight(b)));
  let inRecording = false;
  return h('ol', { class: 'flow' }, entries.map((e, i) => {
    const prev = i > 0 ? entries[i - 1].at : null;
    const gap = prev ? ` (+${duration(Math.max(0, Math.round((new Date(e.at) - new Date(prev)) / 1000)))})` : '';
    if (e.mark) {
      inRecording = e.mark === 'start';
      return h('li', { class: `rec-mark ${e.mark}` }, h('b', {}, t(e.mark === 'start' ? 'rec_start' : 'rec_end')),
        h('span', { class: 'when' }, `${clock(e.at)}${gap}`));
    }
    const s = e.step;
    return h('li', { class: inRecording ? 'in-rec' : '', title: inRecording ? t('rec_span') : null },
      h('b', {}, s.block), s.type ? h('span', { class: 'type' }, s.type) : null,
      s.outcome ? h('span', { class: 'outcome' }, `→ ${s.outcome}`) : null,
      h('span', { class: 'when' }, `${clock(e.at)}${gap}`));
  }));
}

/// The call's log: what happened to the record, then the telephony's own lines.
function logView(log) {
  const detail = e => {
    if (!e.detail) return '';
    if (e.detail.fields) return `${t('ev_fields')}: ${e.detail.fields.join(', ')}`;
    return Object.entries(e.detail).map(([k, v]) => `${k}: ${v}`).join('; ');
  };
  return [
    h('table', { class: 'log-events' },
      h('thead', {}, h('tr', {}, [t('ev_time'), t('ev_event'), t('ev_source'), t('ev_detail')].map(c => h('th', {}, c)))),
      h('tbody', {}, log.events.map(e => h('tr', { dataset: { event: e.event } },
        h('td', {}, when(e.at)), h('td', {}, WORDS[S.lang].ev[e.event] || e.event), h('td', {}, e.source || ''), h('td', {}, detail(e)))))),
    h('h4', {}, t('log_lines')),
    log.lines.length ? h('pre', { class: 'log-lines' }, log.lines.join('\n')) : h('p', { class: 'muted' }, t('log_no_lines')),
  ];
}

async function makeLogLink(id, area) {
  area.replaceChildren(t('loading'));
  try {
    const link = await api('POST', `/api/v1/calls/${encodeURIComponent(id)}/log-link`);
    let copied = false;
    try {
      await navigator.clipboard.writeText(link.url);
      copied = true;
    } catch (e) { /* no clipboard permission: the field below is there to copy from */ }
    const field = h('input', { class: 'link-field', readonly: true, value: link.url, onclick: ev => ev.target.select() });
    const revoke = h('button', { class: 'btn', dataset: { action: 'revoke-log-links' }, onclick: async () => {
      const r = await api('DELETE', `/api/v1/calls/${encodeURIComponent(id)}/log-link`);
      area.replaceChildren(h('span', { class: 'muted' }, t('log_revoked', r.revoked)));
    } }, t('log_revoke'));
    area.replaceChildren(field, h('span', { class: 'muted' }, t(copied ? 'log_copied' : 'log_made', when(link.expires_at))), revoke);
  } catch (e) {
    area.replaceChildren(h('span', { class: 'bad' }, `${t('error')}: ${e.message}`));
  }
}

// ---------------------------------------------------------------------------------------------
// Live: new and changed calls over Server-Sent Events; Pause holds them back.

function startLive() {
  stopLive();
  const source = new EventSource(`/api/v1/calls/live?${apiQuery()}`);
  S.live.source = source;
  source.addEventListener('open', () => {
    const wasDown = S.live.connected === false && S.live.everConnected;
    S.live.connected = true; S.live.everConnected = true;
    renderPause();
    // Calls that finished while the stream was down: the first page brings them.
    if (wasDown) catchUp();
  });
  source.addEventListener('call', ev => {
    let call;
    try { call = JSON.parse(ev.data); } catch { return; }
    if (S.live.paused) {
      S.live.waiting.set(call.id, call);
      renderPause();
    } else upsertLive(call);
  });
  source.addEventListener('resync', () => {
    if (S.live.paused) { S.live.resync = true; renderPause(); } else catchUp();
  });
  source.addEventListener('error', () => {
    S.live.connected = false;
    renderPause();
    if (source.readyState === EventSource.CLOSED) {
      // Refused (signed out, or access changed): ask who we are before trying again.
      clearTimeout(S.live.retry);
      S.live.retry = setTimeout(async () => {
        try { await api('GET', '/api/v1/session'); if (S.live.source === source) startLive(); } catch { /* signedOut() took over */ }
      }, 3000);
    }
  });
}

function stopLive() {
  clearTimeout(S.live.retry);
  if (S.live.source) S.live.source.close();
  S.live.source = null; S.live.connected = false; S.live.everConnected = false;
}

async function catchUp() {
  const L = S.list;
  try {
    const page = await api('GET', `/api/v1/calls?${apiQuery({ limit: PAGE })}`);
    if (S.list !== L) return;
    for (const call of page.items.slice().reverse()) upsertLive(call);
    L.total = page.total; renderCount();
  } catch { /* the next event or reconnect tries again */ }
}

function togglePause() {
  S.live.paused = !S.live.paused;
  if (!S.live.paused) {
    const waiting = [...S.live.waiting.values()].sort((a, b) => (newer(a, b) ? 1 : -1));
    S.live.waiting.clear();
    for (const call of waiting) upsertLive(call);
    if (S.live.resync) { S.live.resync = false; catchUp(); }
  }
  renderPause();
}

function renderPause() {
  const b = $('#pause'), st = $('#live-state');
  if (!b || !st) return;
  const n = S.live.waiting.size;
  b.setAttribute('aria-pressed', String(S.live.paused));
  b.replaceChildren(icon(S.live.paused ? 'play' : 'pause'), S.live.paused ? t('resume') : t('pause'));
  if (n) b.append(h('span', { class: 'badge', id: 'waiting' }, String(n)));
  st.className = `live-state${S.live.paused ? ' paused' : ''}${S.live.connected || S.live.paused ? '' : ' off'}`;
  st.replaceChildren(h('span', { class: 'dot' }),
    S.live.paused ? (n || S.live.resync ? `${t('live_paused')} · ${t('waiting', n)}` : t('live_paused')) : S.live.connected ? t('live_on') : t('live_off'));
}

// ---------------------------------------------------------------------------------------------
// The active filters as chips under the toolbar.

function renderChips() {
  const box = $('#chips');
  if (!box) return;
  const p = viewParams();
  const chips = [];
  const dir = p.getAll('direction');
  if (dir.length === 1) chips.push(t(`${dir[0]}_pl`));
  if (p.get('number')) chips.push(`${t('f_number')}: ${p.get('number')}`);
  if (p.get('talk_min') || p.get('talk_max')) chips.push(`${t('f_talk')}: ${duration(Number(p.get('talk_min') || 0))} – ${p.get('talk_max') ? duration(Number(p.get('talk_max'))) : '…'}`);
  for (const [key, label] of [['group', 'f_groups'], ['operator', 'f_operators'], ['queue', 'f_queues'], ['result', 'f_results'], ['completion_code', 'f_codes'], ['tag', 'f_tags'], ['scenario', 'f_scenarios'], ['campaign', 'f_campaigns'], ['topic', 'f_topics']]) {
    const n = p.getAll(key).length;
    if (n) chips.push(`${t(label)}: ${n}`);
  }
  if (p.get('scenario_kind')) chips.push(`${t('f_scenarios')}: ${t(p.get('scenario_kind') === 'automated' ? 'automated' : 'operator_sc')}`);
  box.replaceChildren(...chips.map(c => h('span', { class: 'chip' }, c)));
}

// ---------------------------------------------------------------------------------------------
// Settings: Filters and View.

async function loadDirs() {
  if (S.dirs) return S.dirs;
  const get = path => api('GET', path).then(r => r.items).catch(() => []);
  const [groups, users, queues, codes, tags, scenarios, campaigns, topics] = await Promise.all(
    ['/api/v1/groups', '/api/v1/users', '/api/v1/queues', '/api/v1/completion-codes', '/api/v1/tags', '/api/v1/scenarios', '/api/v1/campaigns', '/api/v1/topics'].map(get));
  S.dirs = { groups, users, queues, codes, tags, scenarios, campaigns, topics };
  return S.dirs;
}

function closeSettings() {
  document.querySelectorAll('.drawer, .drawer-back').forEach(e => e.remove());
}

async function openSettings(tab) {
  closeSettings();
  const body = h('div', { class: 'body' }, t('loading'));
  const foot = h('div', { class: 'foot' });
  const tabs = h('div', { class: 'tabs', role: 'tablist' },
    ['filters', 'view'].concat(S.me.permissions.manage_settings ? ['account', 'qm', 'ingest'] : []).map(k => h('button', { role: 'tab', id: `tab-${k}`, 'aria-selected': String(k === tab), onclick: () => openSettings(k) }, t(k))));
  const drawer = h('aside', { class: 'drawer', role: 'dialog', 'aria-label': t('settings') },
    h('div', { class: 'head' }, h('h2', {}, t('settings')), h('button', { class: 'btn', 'aria-label': t('close'), onclick: closeSettings }, '✕')),
    tabs, body, foot);
  document.body.append(h('div', { class: 'drawer-back', onclick: closeSettings }), drawer);
  if (tab === 'view') return viewTab(body, foot);
  if (tab === 'account') return accountTab(body, foot);
  if (tab === 'qm') return qmTab(body, foot);
  if (tab === 'ingest') return ingestTab(body, foot);
  await loadDirs();
  filtersTab(body, foot);
}

function filtersTab(body, foot) {
  const p = viewParams();
  const d = S.dirs;
  // Type
  const dir = p.getAll('direction').length === 1 ? p.get('direction') : '';
  const type = h('div', { class: 'radios' }, [['', 'all'], ['incoming', 'incoming_pl'], ['outgoing', 'outgoing_pl']].map(([v, label]) =>
    h('label', {}, h('input', { type: 'radio', name: 'direction', value: v, checked: v === dir }), ' ', t(label))));
  // Number
  const numberError = h('div', { class: 'error', id: 'number-error', role: 'alert', hidden: true });
  const number = h('input', { type: 'text', id: 'f-number', inputmode: 'tel', value: p.get('number') || '', placeholder: t('number_hint'), 'aria-describedby': 'number-error',
    oninput: () => checkNumber() });
  const checkNumber = () => {
    const v = number.value.trim();
    const bad = v.length > 0 && v.length < 3;
    number.classList.toggle('invalid', bad);
    numberError.hidden = !bad; numberError.textContent = bad ? t('number_short') : '';
    return !bad;
  };
  // Talk duration
  const talkError = h('div', { class: 'error', id: 'talk-error', role: 'alert', hidden: true });
  const talkMin = h('input', { type: 'text', id: 'f-talk-min', placeholder: '0:00', value: p.get('talk_min') ? duration(Number(p.get('talk_min'))) : '' });
  const talkMax = h('input', { type: 'text', id: 'f-talk-max', placeholder: '24:00:00', value: p.get('talk_max') ? duration(Number(p.get('talk_max'))) : '' });
  const checkTalk = () => {
    const a = parseDuration(talkMin.value), b = parseDuration(talkMax.value);
    let msg = '';
    if (Number.isNaN(a) || Number.isNaN(b)) msg = t('talk_bad');
    else if (a !== null && b !== null && a > b) msg = t('talk_order');
    talkError.hidden = !msg; talkError.textContent = msg;
    talkMin.classList.toggle('invalid', Number.isNaN(a)); talkMax.classList.toggle('invalid', Number.isNaN(b));
    return msg ? null : [a, b];
  };
  // Scenarios: kind first, then which.
  const kind = p.get('scenario_kind') || '';
  const scenarioKind = h('div', { class: 'radios' }, [['', 'all'], ['automated', 'automated'], ['operator', 'operator_sc']].map(([v, label]) =>
    h('label', {}, h('input', { type: 'radio', name: 'scenario_kind', value: v, checked: v === kind, onchange: () => scenarios.filterKind(v) }), ' ', t(label))));
  const results = Object.keys(WORDS.en.result).map(code => ({ id: code, name: t('result')[code] }));
  const groups = multi('group', d.groups, p);
  const operators = multi('operator', d.users, p);
  const queues = multi('queue', d.queues, p);
  const resultsMs = multi('result', results, p);
  const codes = multi('completion_code', d.codes, p);
  const tags = multi('tag', d.tags, p);
  const scenarios = multi('scenario', d.scenarios, p, kind);
  const campaigns = multi('campaign', d.campaigns, p);
  const topics = multi('topic', topicTree(d.topics), p);
  const field = (key, label, ...content) => h('div', { class: 'field', dataset: { filter: key } }, h('div', { class: 'label' }, t(label)), ...content);
  body.replaceChildren(
    field('direction', 'f_type', type),
    h('div', { class: 'field', dataset: { filter: 'number' } }, h('label', { for: 'f-number' }, t('f_number')), number, numberError),
    field('talk', 'f_talk', h('div', { class: 'range' }, t('talk_from'), talkMin, t('talk_to'), talkMax), h('div', { class: 'muted' }, t('talk_hint')), talkError),
    field('group', 'f_groups', groups.el), field('operator', 'f_operators', operators.el), field('queue', 'f_queues', queues.el),
    field('result', 'f_results', resultsMs.el), field('completion_code', 'f_codes', codes.el), field('tag', 'f_tags', tags.el),
    field('scenario', 'f_scenarios', scenarioKind, scenarios.el), field('campaign', 'f_campaigns', campaigns.el), field('topic', 'f_topics', topics.el));
  checkNumber();
  const apply = () => {
    const talk = checkTalk();
    if (!checkNumber() || !talk) return;
    const next = new URLSearchParams();
    for (const k of ['preset', 'from', 'to']) for (const v of p.getAll(k)) next.append(k, v);
    const dirValue = body.querySelector('input[name=direction]:checked').value;
    if (dirValue) next.set('direction', dirValue);
    if (number.value.trim()) next.set('number', number.value.trim());
    if (talk[0] !== null && talk[0] > 0) next.set('talk_min', talk[0]);
    if (talk[1] !== null) next.set('talk_max', talk[1]);
    const sk = body.querySelector('input[name=scenario_kind]:checked').value;
    if (sk) next.set('scenario_kind', sk);
    for (const m of [groups, operators, queues, resultsMs, codes, tags, scenarios, campaigns, topics]) for (const id of m.selected()) next.append(m.key, id);
    closeSettings();
    setView(next);
  };
  foot.replaceChildren(
    h('button', { class: 'btn', id: 'filters-reset', onclick: () => {
      const next = new URLSearchParams();
      for (const k of ['preset', 'from', 'to']) for (const v of p.getAll(k)) next.append(k, v);
      closeSettings(); setView(next);
    } }, t('reset')),
    h('button', { class: 'primary', id: 'filters-apply', onclick: apply }, t('apply')));
  body.addEventListener('keydown', ev => { if (ev.key === 'Enter' && ev.target.tagName === 'INPUT' && ev.target.type === 'text') apply(); });
}

// Topics nest: show each under its parent.
function topicTree(topics) {
  const children = new Map();
  for (const tp of topics) {
    const k = tp.parent_id || '';
    if (!children.has(k)) children.set(k, []);
    children.get(k).push(tp);
  }
  const out = [];
  const walk = (parent, depth) => (children.get(parent) || []).forEach(tp => { out.push({ ...tp, depth }); walk(tp.id, depth + 1); });
  walk('', 0);
  // Anything whose parent is not listed still shows.
  for (const tp of topics) if (!out.some(o => o.id === tp.id)) out.push({ ...tp, depth: 0 });
  return out;
}

// A multi-select that stays usable with tens of thousands of choices: searchable, and it draws
// at most a few hundred rows (selected first).
function multi(key, options, params, kindFilter) {
  const chosen = new Set(params.getAll(key));
  let kind = kindFilter || '';
  const LIMIT = 200;
  const summary = h('summary', {}, h('span', {}, t('all')), h('span', { class: 'sel' }));
  const search = h('input', { type: 'search', placeholder: t('search'), 'aria-label': `${t('search')}: ${key}` });
  const list = h('div', { class: 'list' });
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const fits = o => (!kind || !o.kind || o.kind === kind) && (!q || o.name.toLowerCase().includes(q) || (o.login || '').toLowerCase().includes(q));
    const shown = options.filter(o => chosen.has(o.id)).concat(options.filter(o => !chosen.has(o.id) && fits(o)));
    list.replaceChildren(...shown.slice(0, LIMIT).map(o => h('label', { class: o.depth ? `nested depth-${Math.min(o.depth, 3)}` : null },
      h('input', { type: 'checkbox', value: o.id, checked: chosen.has(o.id), onchange: ev => { if (ev.target.checked) chosen.add(o.id); else chosen.delete(o.id); sum(); } }),
      o.name)));
    if (shown.length > LIMIT) list.append(h('div', { class: 'more' }, t('more', shown.length - LIMIT)));
    if (shown.length === 0) list.append(h('div', { class: 'more' }, t('nothing')));
  };
  const sum = () => { summary.lastChild.textContent = chosen.size ? t('selected', chosen.size) : ''; };
  search.addEventListener('input', draw);
  const el = h('details', { class: 'ms', dataset: { ms: key } }, summary, h('div', { class: 'inner' }, search, list));
  el.addEventListener('toggle', () => { if (el.open) draw(); });
  sum();
  return {
    el, key,
    selected: () => [...chosen].filter(id => !kind || key !== 'scenario' || (options.find(o => o.id === id) || {}).kind === kind || !(options.find(o => o.id === id) || {}).kind),
    filterKind: k => { kind = k; if (el.open) draw(); },
  };
}

function viewTab(body, foot) {
  const allowed = COLUMNS.filter(c => c !== 'price' || S.me.permissions.sees_price);
  const shown = new Set(visibleColumns());
  const error = h('div', { class: 'error', role: 'alert', hidden: true }, t('columns_none'));
  body.replaceChildren(h('p', { class: 'muted' }, t('columns_hint')),
    h('div', { class: 'columns-list' }, allowed.map(c => h('label', {},
      h('input', { type: 'checkbox', name: 'column', value: c, checked: shown.has(c) }), t('col')[c]))),
    error);
  foot.replaceChildren(
    h('button', { class: 'btn', id: 'columns-default', onclick: async () => { await savePrefs({ columns: null }); closeSettings(); showMain(); } }, t('defaults')),
    h('button', { class: 'primary', id: 'columns-save', onclick: async () => {
      const columns = [...body.querySelectorAll('input[name=column]:checked')].map(i => i.value);
      if (!columns.length) { error.hidden = false; return; }
      try { await savePrefs({ columns }); } catch (e) { error.textContent = e.message; error.hidden = false; return; }
      closeSettings(); showMain();
    } }, t('save')));
}

/// Owner and administrator: how long calls and recordings are kept, and what supervisors and
/// operators may do with recordings.
async function accountTab(body, foot) {
  const settings = await api('GET', '/api/v1/settings');
  const days = (id, value) => h('input', { id, type: 'number', min: '1', max: '36500', step: '1', value: value == null ? '' : String(value) });
  const calls = days('keep-calls', settings.keep_calls_days);
  const recs = days('keep-recordings', settings.keep_recordings_days);
  const access = h('select', { id: 'restricted-recordings' }, ['download', 'play', 'none'].map(v =>
    h('option', { value: v, selected: v === settings.restricted_recordings }, t(`ra_${v}`))));
  const note = h('div', { class: 'error', role: 'alert', hidden: true });
  body.replaceChildren(
    h('label', { class: 'field' }, h('span', {}, t('keep_calls')), calls),
    h('label', { class: 'field' }, h('span', {}, t('keep_recordings')), recs),
    h('p', { class: 'muted' }, t('keep_hint')),
    h('label', { class: 'field' }, h('span', {}, t('restricted_rec')), access),
    note);
  const read = input => {
    const v = input.value.trim();
    if (v === '') return null;
    const n = Number(v);
    return Number.isInteger(n) && n >= 1 && n <= 36500 ? n : undefined;
  };
  foot.replaceChildren(h('button', { class: 'primary', id: 'account-save', onclick: async () => {
    const change = { keep_calls_days: read(calls), keep_recordings_days: read(recs), restricted_recordings: access.value };
    note.classList.add('error'); note.classList.remove('ok');
    if (change.keep_calls_days === undefined || change.keep_recordings_days === undefined) {
      note.textContent = t('keep_bad'); note.hidden = false; return;
    }
    try {
      S.me.settings = await api('PUT', '/api/v1/settings', change);
      S.me = await api('GET', '/api/v1/me');
      note.textContent = t('saved'); note.classList.remove('error'); note.classList.add('ok'); note.hidden = false;
    } catch (e) { note.textContent = e.message; note.hidden = false; }
  } }, t('save')));
}

// Owner and administrator: where the QM system is, its API key, and whether calls may be handed
// to it. The key never comes back from the server: the field shows its last characters as a
// placeholder, and an empty field keeps it.
async function qmTab(body, foot) {
  let saved = await api('GET', '/api/v1/integrations/qm');
  const url = h('input', { id: 'qm-base-url', type: 'url', class: 'wide', spellcheck: 'false' });
  const key = h('input', { id: 'qm-api-key', type: 'password', class: 'wide', autocomplete: 'new-password' });
  const lang = h('input', { id: 'qm-language', type: 'text' });
  const channel = h('select', { id: 'qm-channel' }, ['left', 'right'].map(v => h('option', { value: v }, t(`qm_${v}`))));
  const active = h('input', { id: 'qm-active', type: 'checkbox' });
  const status = h('div', { id: 'qm-status' });
  const error = h('div', { class: 'error', id: 'qm-error', role: 'alert', hidden: true });
  const note = h('div', { class: 'ok', id: 'qm-note', role: 'status', hidden: true });
  // The QM system downloads recordings from this server: this address must be reachable from it.
  const links = h('p', { class: 'muted', id: 'qm-links' });
  const unreachable = h('p', { class: 'bad', id: 'qm-links-warning', hidden: true });
  const fill = v => {
    links.textContent = t('qm_links', v.file_links_from);
    // The server's own warning: an address only this machine reaches (the default --public-url).
    unreachable.textContent = v.file_links_warning ? t('qm_unreachable') : ''; unreachable.hidden = !v.file_links_warning;
    saved = v;
    url.value = v.base_url; key.value = ''; key.placeholder = v.api_key || '';
    lang.value = v.language_code; channel.value = v.operator_channel; active.checked = v.active;
    // A key sealed with another secret key (the server's key was replaced) cannot be used.
    const stale = v.api_key && !v.api_key_readable;
    status.className = stale ? 'bad' : v.connected ? 'ok' : 'muted';
    status.textContent = stale ? t('qm_key_again') : v.connected ? t('qm_connected', when(v.connected_at)) : t('qm_not_connected');
  };
  fill(saved);
  body.replaceChildren(
    h('label', { class: 'field' }, h('span', {}, t('qm_base_url')), url),
    h('label', { class: 'field' }, h('span', {}, t('qm_api_key')), key, h('span', {}, t('qm_key_keep'))),
    h('label', { class: 'field' }, h('span', {}, t('qm_language')), lang),
    h('label', { class: 'field' }, h('span', {}, t('qm_channel')), channel),
    h('label', { class: 'check' }, active, t('qm_active')),
    h('p', { class: 'muted' }, t('qm_active_hint')),
    links, unreachable, status, error, note);
  // Only what changed, so an unchanged address or key is not checked again; `active` always.
  const change = () => {
    const c = { active: active.checked };
    if (url.value.trim() !== saved.base_url) c.base_url = url.value.trim();
    if (key.value) c.api_key = key.value;
    if (lang.value.trim() !== saved.language_code) c.language_code = lang.value.trim();
    if (channel.value !== saved.operator_channel) c.operator_channel = channel.value;
    // The settings this change was made from: the server refuses it (409) when they changed since.
    c.version = saved.version;
    return c;
  };
  const fields = { base_url: url, api_key: key, language_code: lang };
  const submit = async (button, request, done) => {
    button.disabled = true; error.hidden = true; note.hidden = true;
    Object.values(fields).forEach(i => i.classList.remove('invalid'));
    try {
      fill(await request());
      note.textContent = done; note.hidden = false;
      // Whether the Export menu offers QM follows the integration: ask again, no reload.
      S.me = await api('GET', '/api/v1/me');
      refreshExportMenu();
    } catch (e) {
      error.textContent = e.message; error.hidden = false;
      fields[e.field]?.classList.add('invalid');
      // Changed meanwhile (by someone else, in another tab): the form shows them as they are now,
      // and the next save is made from them.
      if (e.status === 409) {
        try { fill(await api('GET', '/api/v1/integrations/qm')); } catch { /* the message above stands */ }
      }
    } finally {
      button.disabled = false;
    }
  };
  foot.replaceChildren(
    h('button', { class: 'btn', id: 'qm-connect', onclick: ev => submit(ev.currentTarget, () => api('POST', '/api/v1/integrations/qm/connect'), t('qm_connect_ok')) }, t('qm_connect')),
    h('button', { class: 'primary', id: 'qm-save', onclick: ev => submit(ev.currentTarget, () => api('PUT', '/api/v1/integrations/qm', change()), t('saved')) }, t('save')));
}

/** The account's PBX settings (what PBX records mean), folded: shown on demand, saved alone. */
async function pbxSettings() {
  const v = await api('GET', '/api/v1/integrations/pbx');
  const own = h('textarea', { id: 'pbx-own', rows: '3', class: 'wide' }, v.own_numbers.join('\n'));
  const digits = h('input', { id: 'pbx-digits', type: 'number', min: '1', max: '9', value: String(v.extension_max_digits) });
  const contexts = h('input', { id: 'pbx-contexts', type: 'text', class: 'wide', value: v.external_contexts.join(', ') });
  const internal = h('select', { id: 'pbx-internal' }, ['outgoing', 'skip'].map(k =>
    h('option', { value: k, selected: v.internal_calls === k }, t(`pbx_int_${k}`))));
  const tz = h('input', { id: 'pbx-tz', type: 'text', value: v.timezone || '', placeholder: 'Europe/Moscow' });
  const rec = h('input', { id: 'pbx-rec', type: 'text', class: 'wide', value: v.recording_url_template || '', placeholder: 'https://pbx.example.com/rec/{name}' });
  const fields = { own_numbers: own, extension_max_digits: digits, external_contexts: contexts, internal_calls: internal, timezone: tz, recording_url_template: rec };
  const note = h('div', { role: 'alert', id: 'pbx-note', hidden: true });
  const save = h('button', { class: 'primary', id: 'pbx-save', onclick: async () => {
    Object.values(fields).forEach(f => f.classList.remove('invalid'));
    const list = (text, sep) => text.split(sep).map(s => s.trim()).filter(Boolean);
    const change = {
      own_numbers: list(own.value, /\n/), extension_max_digits: Number(digits.value), external_contexts: list(contexts.value, ','),
      internal_calls: internal.value, timezone: tz.value.trim() || null, recording_url_template: rec.value.trim() || null,
    };
    try {
      await api('PUT', '/api/v1/integrations/pbx', change);
      note.className = 'ok'; note.textContent = t('saved');
    } catch (e) {
      note.className = 'error'; note.textContent = e.message;
      // `own_numbers[2]` names the list.
      fields[(e.field || '').replace(/\[\d+\]$/, '')]?.classList.add('invalid');
    }
    note.hidden = false;
  } }, t('save'));
  const field = (label, input) => h('label', { class: 'field' }, h('span', {}, t(label)), input);
  return h('details', { class: 'pbx', id: 'pbx-settings' }, h('summary', {}, t('pbx')),
    field('pbx_own', own), field('pbx_digits', digits), field('pbx_contexts', contexts), field('pbx_internal', internal),
    field('pbx_tz', tz), field('pbx_rec', rec), h('p', { class: 'muted' }, t('pbx_hint')), save, note);
}

/** A source of calls as people call it. */
function sourceName(code) {
  const known = { api: 'API calltrail', freeswitch: 'FreeSWITCH', 'voximplant-kit': 'Voximplant Kit' };
  return known[code] ?? (code.startsWith('import:') ? `${t('in_import')} ${code.slice(7)}` : code);
}

// Owner and administrator: what each source (the API, FreeSWITCH, the reference product's
// webhooks, file imports) sent and what became of it, and what was refused, to look at and send
// again once the cause is fixed.
async function ingestTab(body, foot) {
  const v = await api('GET', '/api/v1/ingest/health');
  const cols = ['accepted', 'updated', 'duplicates', 'pending', 'skipped', 'rejected'];
  // One card per source: its name, when it last sent, and its counts in a small grid.
  const sources = v.sources.length
    ? h('div', { id: 'ingest-sources' }, v.sources.map(s => h('section', { class: 'source', dataset: { source: s.source } },
      h('div', { class: 'name' }, h('strong', {}, sourceName(s.source)), h('span', { class: 'muted' }, ` · ${t('in_last')} ${when(s.last_seen_at)}`)),
      h('dl', { class: 'counts' }, cols.map(c => h('div', { dataset: { col: c }, class: c === 'rejected' && s.rejected ? 'bad' : '' },
        h('dt', {}, t(`in_${c}`)), h('dd', {}, String(s[c]))))))))
    : h('p', { class: 'muted', id: 'ingest-sources' }, t('in_none'));
  const rejection = r => {
    const payload = h('pre', { class: 'payload', hidden: true });
    const error = h('div', { class: 'error', role: 'alert', hidden: true });
    const state = h('div', { class: 'ok', role: 'status', hidden: !r.replayed_at }, r.replayed_at ? t('in_replayed', when(r.replayed_at)) : '');
    const show = h('button', { class: 'btn', onclick: async ev => {
      if (!payload.hidden) { payload.hidden = true; ev.currentTarget.textContent = t('in_show'); return; }
      const full = await api('GET', `/api/v1/ingest/rejections/${r.id}`);
      payload.textContent = full.payload ?? ''; payload.hidden = false; ev.currentTarget.textContent = t('in_hide');
    } }, t('in_show'));
    const replay = h('button', { class: 'btn', onclick: async ev => {
      const button = ev.currentTarget;
      button.disabled = true; error.hidden = true;
      try {
        const done = await api('POST', `/api/v1/ingest/rejections/${r.id}/replay`);
        state.textContent = t('in_replayed', when(done.replayed_at)); state.hidden = false;
        button.hidden = true;
      } catch (e) { error.textContent = e.message; error.hidden = false; button.disabled = false; }
    } }, t('in_replay'));
    replay.hidden = Boolean(r.replayed_at);
    return h('li', { class: 'rejection', dataset: { id: r.id, source: r.source } },
      h('div', { class: 'meta' }, `${when(r.at)} · ${sourceName(r.source)}`),
      h('div', { class: 'reason' }, r.field ? `${r.field}: ${r.reason}` : r.reason),
      h('div', { class: 'actions' }, r.bytes !== null ? show : '', r.replayable ? replay : h('span', { class: 'muted' }, r.bytes === null ? t('in_not_replayable') : '')),
      payload, state, error);
  };
  body.replaceChildren(await pbxSettings(), sources,
    h('h3', {}, t('in_rejections')),
    v.rejections.length ? h('ul', { class: 'rejections', id: 'ingest-rejections' }, v.rejections.map(rejection)) : h('p', { class: 'muted', id: 'ingest-rejections' }, t('in_no_rejections')));
  foot.replaceChildren(h('button', { class: 'btn', id: 'ingest-refresh', onclick: () => openSettings('ingest') }, t('in_refresh')));
}

window.addEventListener('popstate', () => { if (S.me && S.me.permissions.call_history) showMain(); });
document.addEventListener('DOMContentLoaded', boot);
