//! The people and things of the demo contact center.

/// (login, display name) of the demo operators.
pub const OPERATORS: &[(&str, &str)] = &[
    ("ivanova", "Анна Иванова"),
    ("petrov", "Сергей Петров"),
    ("smirnova", "Ольга Смирнова"),
    ("kuznetsov", "Дмитрий Кузнецов"),
    ("popova", "Мария Попова"),
    ("vasiliev", "Алексей Васильев"),
    ("sokolova", "Екатерина Соколова"),
    ("mikhailov", "Андрей Михайлов"),
    ("novikova", "Татьяна Новикова"),
    ("fedorov", "Игорь Фёдоров"),
    ("morozova", "Наталья Морозова"),
    ("volkov", "Павел Волков"),
    ("alekseeva", "Ирина Алексеева"),
    ("lebedev", "Максим Лебедев"),
    ("semenova", "Юлия Семёнова"),
    ("egorov", "Николай Егоров"),
    ("pavlova", "Светлана Павлова"),
    ("kozlov", "Артём Козлов"),
    ("stepanova", "Елена Степанова"),
    ("nikolaev", "Роман Николаев"),
    ("orlova", "Ксения Орлова"),
    ("andreev", "Владимир Андреев"),
    ("makarova", "Дарья Макарова"),
    ("zakharov", "Евгений Захаров"),
    ("zaitseva", "Алина Зайцева"),
    ("soloviev", "Кирилл Соловьёв"),
    ("borisova", "Вера Борисова"),
    ("yakovlev", "Олег Яковлев"),
    ("grigorieva", "Людмила Григорьева"),
    ("romanov", "Антон Романов"),
    ("vorobieva", "Полина Воробьёва"),
    ("sergeev", "Михаил Сергеев"),
    ("kuzmina", "Валерия Кузьмина"),
    ("frolov", "Денис Фролов"),
    ("aleksandrova", "Анастасия Александрова"),
    ("dmitriev", "Константин Дмитриев"),
    ("koroleva", "Галина Королёва"),
    ("gusev", "Илья Гусев"),
    ("kiseleva", "Оксана Киселёва"),
    ("ilyin", "Георгий Ильин"),
];

/// (key, name, queue key, queue name) of the demo groups.
pub const GROUPS: &[(&str, &str, &str, &str)] = &[
    ("sales", "Продажи", "sales-line", "Линия продаж"),
    ("support", "Поддержка", "support-line", "Линия поддержки"),
    ("retention", "Удержание", "retention-line", "Линия удержания"),
    ("vip", "VIP-клиенты", "vip-line", "VIP-линия"),
];

/// (key, name, automated?) of the scenarios.
pub const INBOUND_SCENARIOS: &[(&str, &str, bool)] = &[
    ("inbound-main", "Входящая линия", false),
    ("inbound-ivr", "Голосовое меню", true),
];
pub const SOFTPHONE_SCENARIO: (&str, &str, bool) = ("softphone", "Исходящие с софтфона", false);

/// (key, name, automated?, start day offset back from today, length in days) of campaigns.
pub const CAMPAIGNS: &[(&str, &str, bool, u32, u32)] = &[
    ("debt-reminder", "Напоминание о задолженности", true, 90, 90),
    ("nps-survey", "Опрос NPS", true, 60, 45),
    ("aug-renewals", "Продление договоров, август", false, 90, 35),
    ("sep-upsell", "Допродажи, сентябрь", false, 70, 40),
    ("nov-renewals", "Продление договоров, ноябрь", false, 30, 31),
    ("winback", "Возврат клиентов", false, 45, 46),
];

/// (key, name) of completion codes; `callback` carries a callback time.
pub const COMPLETION_CODES: &[(&str, &str)] = &[
    ("success", "Успешно"),
    ("callback", "Перезвонить"),
    ("refused", "Отказ"),
    ("thinking", "Думает"),
    ("wrong-person", "Не тот человек"),
    ("not-target", "Нецелевой"),
];

pub const TAGS: &[&str] = &[
    "vip",
    "жалоба",
    "повторный",
    "срочно",
    "новый клиент",
    "допродажа",
    "благодарность",
    "эскалация",
];

pub const TOPICS: &[&str] = &[
    "Биллинг/Возврат",
    "Биллинг/Счёт",
    "Биллинг/Тарифы",
    "Техподдержка/Интернет",
    "Техподдержка/Телевидение",
    "Техподдержка/Оборудование",
    "Продажи/Новое подключение",
    "Продажи/Акции",
    "Договор/Расторжение",
];

pub const NOTES: &[&str] = &[
    "Клиент просит перезвонить завтра после обеда",
    "Уточнил адрес подключения, отправил заявку",
    "Недоволен качеством связи, передано во второй уровень",
    "Согласился на продление на 12 месяцев",
    "Просит выслать счёт на почту",
    "Интересовался акцией «Два месяца бесплатно»",
    "Сообщил о переезде, нужна смена тарифа",
];
